"""Taps: Python attention functions made visible to ``AttentionCapture``.

A ``TorchFunctionMode`` sees torch functions and torch ops, not a plain Python function such as
a diffusers dispatcher backend (``_native_flex_attention``, ``_flash_attention``, a backend a
third party registered), ``torch.nn.attention.flex_attention.flex_attention`` (it hands its
higher-order op to a dynamo compilation of its own, which would trace the capture),
``xformers.ops.memory_efficient_attention`` or ``sageattention.sageattn``. An ``AttentionTap``
wraps one such function and, exactly as torch's own Python functions do, routes the call
through ``torch.overrides.handle_torch_function`` when a capture is active: the capture then sees
it with q and k as that function was handed them. With no capture active (no mode, or only modes
of others) it calls the function straight through (a ``has_torch_function`` check and a look at
the mode stack), so a tapped function computes exactly what it did, for every caller, enhanced
or not.

Where taps go (``install_taps``, called by the front-ends when a model is enhanced and at every
eager forward, so a backend registered or a package imported later is tapped too):

- every entry of diffusers' ``_AttentionBackendRegistry._backends``, when diffusers' dispatcher
  is imported. Under diffusers context parallelism (``_parallel_config`` set) a backend call is
  passed straight through: the capture sees the sharded attention calls inside it instead;
- ``torch.nn.attention.flex_attention.flex_attention``, ``xformers.ops.memory_efficient_attention``
  and ``sageattention.sageattn``, when those modules are imported, in their module and in the
  modules of the layers being enhanced (``from sageattention import sageattn`` binds the
  function there), also as ``torch.compile`` made it there (``flex_attention =
  torch.compile(flex_attention)``, the usual way to run flex fused): the compiled function is
  tapped.

Under ``torch.compile`` dynamo traces a tap's ``__call__``: it never reaches
``handle_torch_function`` there (dynamo's ``has_torch_function`` answers for tensor subclasses
only), so the tap hands the call to the innermost capture itself (``_traced_call``), and the
capture's reading, CFI and scaling are traced into the graph around the attention.

Taps are left in place (they are inert without a capture); ``remove_taps`` takes them out.
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType
from typing import Any, Callable, Iterable

import torch
from torch.overrides import handle_torch_function, has_torch_function

from .calls import (AttentionCall, AttentionReader, read_dispatcher_backend, read_flex_attention, read_sageattn,
                    read_xformers)

_DISPATCH_MODULE = "diffusers.models.attention_dispatch"
# (package module, attribute, reader) of the attention functions tapped where they are imported
_PACKAGE_FUNCTIONS = (
    ("xformers.ops", "memory_efficient_attention", read_xformers),
    ("sageattention", "sageattn", read_sageattn),
    ("torch.nn.attention.flex_attention", "flex_attention", read_flex_attention),
)


class AttentionTap:
    """A Python attention function, made visible to torch function modes (see the module doc).

    Calling the tap calls ``original`` with the same arguments and returns its result; while a
    mode is active (and ``passes_through`` does not say otherwise) the mode sees the call first,
    as ``func=tap``, and reads it with ``reader``.
    """

    def __init__(self, original: Callable, reader: AttentionReader,
                 passes_through: Callable[[tuple, dict], bool] | None = None):
        functools.update_wrapper(self, original)
        self.original = original
        self.reader = reader
        self.passes_through = passes_through

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.passes_through and self.passes_through(args, kwargs):
            return self.original(*args, **kwargs)
        if torch.compiler.is_compiling():
            return self._traced_call(args, kwargs)
        tensors = tuple(value for value in (*args, *kwargs.values()) if isinstance(value, torch.Tensor))
        if has_torch_function(tensors) and _capture_active():
            return handle_torch_function(self, tensors, *args, **kwargs)
        return self.original(*args, **kwargs)

    def _traced_call(self, args: tuple, kwargs: dict) -> Any:
        """The call as dynamo traces it. Dynamo's ``has_torch_function`` answers for tensor
        subclasses only, so ``handle_torch_function`` is never reached under ``torch.compile``;
        instead, when the innermost mode is a capture, it is popped and its ``__torch_function__``
        called, exactly what ``handle_torch_function`` does eagerly (dynamo traces the stack's
        pop and push). The capture then sees the call, and the original function it calls runs
        with the mode off: dynamo turns a flex_attention inside it into its higher-order op."""
        depth = torch._C._len_torch_function_stack()
        innermost = torch._C._get_function_stack_at(depth - 1) if depth else None
        if not getattr(innermost, "reads_attention_taps", False):
            return self.original(*args, **kwargs)
        mode = torch._C._pop_torch_function_stack()
        try:
            return mode.__torch_function__(self, (), args, kwargs)
        finally:
            torch._C._push_on_torch_function_stack(mode)

    def read(self, args: tuple, kwargs: dict) -> AttentionCall | None:
        return self.reader(args, kwargs)

    def __repr__(self) -> str:
        return f"AttentionTap({getattr(self.original, '__qualname__', self.original)!r})"


def _capture_active() -> bool:
    """Whether an ``AttentionCapture`` is on the mode stack. Another mode (diffusers' layer skip
    replaces SDPA by its values) must not see the tap: inside that mode's handler the function
    would run with the mode off and escape it; it sees the SDPA call inside instead."""
    return any(getattr(mode, "reads_attention_taps", False)
               for mode in torch.overrides._get_current_function_mode_stack())


def _under_context_parallelism(args: tuple, kwargs: dict) -> bool:
    return kwargs.get("_parallel_config") is not None


def install_taps(layer_modules: Iterable[str] = ()) -> None:
    """Tap every attention function of the imported libraries not tapped yet (idempotent).

    ``layer_modules``: names of the modules defining the enhanced layers' classes; a package
    attention function bound there by ``from ... import`` is tapped there too.
    """
    registry = _dispatcher_registry()
    if registry is not None:
        for name, backend in list(registry._backends.items()):
            if not isinstance(backend, AttentionTap):
                registry._backends[name] = AttentionTap(backend, read_dispatcher_backend,
                                                        _under_context_parallelism)
    for module_name, attribute, reader in _PACKAGE_FUNCTIONS:
        package = sys.modules.get(module_name)
        function = getattr(package, attribute, None)
        if function is None:
            continue
        tap = function if isinstance(function, AttentionTap) else AttentionTap(function, reader)
        setattr(package, attribute, tap)
        for holder in _modules(layer_modules):
            for key, value in list(vars(holder).items()):
                if value is tap.original:
                    setattr(holder, key, tap)
                elif getattr(value, "_torchdynamo_orig_callable", None) is tap.original:
                    setattr(holder, key, AttentionTap(value, reader))  # torch.compile(function)


def remove_taps(layer_modules: Iterable[str] = ()) -> None:
    """Put back every original function ``install_taps`` replaced (in the same places)."""
    registry = _dispatcher_registry()
    if registry is not None:
        for name, backend in list(registry._backends.items()):
            if isinstance(backend, AttentionTap):
                registry._backends[name] = backend.original
    packages = [module_name for module_name, _, _ in _PACKAGE_FUNCTIONS]
    for holder in _modules([*packages, *layer_modules]):
        for key, value in list(vars(holder).items()):
            if isinstance(value, AttentionTap):
                setattr(holder, key, value.original)


def _dispatcher_registry() -> Any:
    """diffusers' ``_AttentionBackendRegistry`` if diffusers' dispatcher is imported (never
    imported from here: the engine needs only torch)."""
    module = sys.modules.get(_DISPATCH_MODULE)
    return getattr(module, "_AttentionBackendRegistry", None)


def _modules(names: Iterable[str]) -> list[ModuleType]:
    return [sys.modules[name] for name in dict.fromkeys(names) if name in sys.modules]
