"""Where Enhance-A-Video's hooks sit in a module's diffusers hook chain, and taking one out
without breaking the hooks around it.

diffusers' ``HookRegistry`` chains a module's hooks in registration order, the latest outermost.
A hook registered before Enhance-A-Video on the same attention module (pyramid attention
broadcast, FasterCache, TaylorSeer on attention modules, layer skip) would otherwise sit *inside*
it and store or extrapolate the unenhanced output. ``register_innermost`` puts our hook directly
around the module's own forward, whatever was registered before: every other hook on an
enhanced layer then sees the enhanced layer, and the result does not depend on the order in
which the user applied the hooks (docs/diffusers.md, "With diffusers' other hooks"). On the
transformer the same placement makes the forward context read the inputs the model computes on
(FasterCache's denoiser hook halves a CFG batch), staying outside context parallelism's input
split (the context describes the whole forward). ``enable_parallelism`` called after
Enhance-A-Video registers that split outermost, around our hook: ``move_outside`` re-seats our
hook just outside it (the transformer hook does so before each forward), keeping the module's
``forward`` the same callable, so the forward already under way runs the new order.

The functions reach into the registry's chain (``_hook_order``, ``_fn_refs``, the
``HookFunctionReference`` fields), which diffusers 0.35 (the oldest this project supports) and
0.42 lay out alike (the same chain fields, links filled the same way, the same ``remove_hook``);
tests/test_hook_composition*.py exercise them, with the diffusers the project's environment
installs, against every diffusers cache that hooks attention modules, and
tests/test_context_parallel*.py against context parallelism enabled after Enhance-A-Video.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from diffusers.hooks import HookRegistry, ModelHook
from diffusers.hooks.hooks import HookFunctionReference


def register_innermost(registry: HookRegistry, hook: ModelHook, name: str, outside_of: tuple[str, ...] = ()) -> None:
    """``registry.register_hook(hook, name)``, but innermost: directly around the module's own
    forward, inside the hooks already registered; yet outside those whose names start with one
    of ``outside_of`` (and so outside every hook inside them)."""
    position = _position(registry, outside_of)
    if position == len(registry._fn_refs):
        registry.register_hook(hook, name)
        return
    if name in registry.hooks:
        raise ValueError(f"hook {name!r} is already registered on this module (its chain, innermost "
                         f"first: {registry._hook_order})")
    module = hook.initialize_hook(registry._module_ref)
    outer = registry._fn_refs[position]
    inner_forward = outer.original_forward if outer.original_forward is not None else outer.forward

    fn_ref = HookFunctionReference()
    _link(fn_ref, hook, module, inner_forward)

    def hooked_forward(*args, **kwargs):
        args, kwargs = fn_ref.pre_forward(module, *args, **kwargs)
        return fn_ref.post_forward(module, fn_ref.forward(*args, **kwargs))

    if outer.original_forward is not None:
        outer.original_forward = hooked_forward
    else:
        outer.forward = hooked_forward
    hook.fn_ref = fn_ref
    registry.hooks[name] = hook
    registry._hook_order.insert(position, name)
    registry._fn_refs.insert(position, fn_ref)


def _position(registry: HookRegistry, outside_of: tuple[str, ...]) -> int:
    """The chain index (0: innermost) just outside the outermost hook named ``outside_of*``."""
    named = [index for index, hook_name in enumerate(registry._hook_order)
             if outside_of and hook_name.startswith(outside_of)]
    return named[-1] + 1 if named else 0


def move_outside(registry: HookRegistry, name: str, outside_of: tuple[str, ...]) -> bool:
    """Move hook ``name`` just outside the outermost hook whose name starts with one of
    ``outside_of``, if one sits outside it; every other hook keeps its place in the chain, and
    ``module.forward`` stays the same callable (a forward already bound to it, as
    ``nn.Module.__call__`` binds it before running forward pre-hooks, runs the new order).
    Returns whether it moved."""
    index = registry._hook_order.index(name)
    position = _position(registry, outside_of)
    if position <= index:
        return False
    order = list(registry._hook_order)
    order.insert(position - 1, order.pop(index))
    _rechain(registry, order)
    return True


def _rechain(registry: HookRegistry, order: list[str]) -> None:
    """Put the registry's hooks in chain ``order`` (0: innermost, a permutation of the current
    one) by reassigning what each chain link calls. The links stay: each rewritten forward
    (diffusers' ``new_forward`` closures, ``register_innermost``'s ``hooked_forward``) calls
    through the ``HookFunctionReference`` of its chain position, whichever hook it now holds."""
    links = registry._fn_refs
    # what the hook at each position wraps: the module's own forward, then the next link inwards
    wrapped = [link.original_forward if link.original_forward is not None else link.forward for link in links]
    module = registry._module_ref
    for link, inner_forward, name in zip(links, wrapped, order):
        hook = registry.hooks[name]
        _link(link, hook, module, inner_forward)
        hook.fn_ref = link
    registry._hook_order[:] = order


def _link(link: HookFunctionReference, hook: ModelHook, module: torch.nn.Module, inner_forward: Callable) -> None:
    """Make chain ``link`` run ``hook`` around ``inner_forward`` (what the link wraps), as
    ``HookRegistry.register_hook`` fills a new link: a hook with ``new_forward`` replaces the
    forward and keeps ``inner_forward`` as its ``original_forward``."""
    link.pre_forward, link.post_forward = hook.pre_forward, hook.post_forward
    if hasattr(hook, "new_forward"):
        link.original_forward = inner_forward
        link.forward = functools.update_wrapper(functools.partial(hook.new_forward, module), hook.new_forward)
    else:
        link.original_forward, link.forward = None, inner_forward


def remove_keeping_outer_hooks(registry: HookRegistry, name: str) -> None:
    """``registry.remove_hook(name, recurse=False)``, keeping a hook registered around it working.

    diffusers (0.35 to 0.42) hands the removed hook's inner forward to the next hook's ``fn_ref.forward``;
    for a hook with ``new_forward`` (pyramid attention broadcast and the other caches) that
    replaces the hook itself, which then silently stops caching. Its inner forward is
    ``fn_ref.original_forward``: put it there and give the hook its own forward back.
    """
    if name not in registry.hooks:
        return
    index = registry._hook_order.index(name)
    outer = registry._fn_refs[index + 1] if index + 1 < len(registry._fn_refs) else None
    outer_forward = None if outer is None else outer.forward
    registry.remove_hook(name, recurse=False)
    if outer is not None and outer.original_forward is not None:
        outer.original_forward, outer.forward = outer.forward, outer_forward
