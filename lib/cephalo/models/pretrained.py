"""Starting a run's backbone from a local pretrained file, or refusing to start.

With 400 training images, ImageNet weights are the largest accuracy lever there is, and every
public baseline of the challenge starts from them. The files come in the layouts OpenMMLab
publishes:

- ImageNet HRNet: the backbone's own keys, unprefixed (``conv1.weight``, ``stage4...``), plus
  the classifier's (``incre_modules``, ``final_layer``, ``classifier``);
- ImageNet CSPNeXt (MMPretrain / MMDetection): ``backbone.``-prefixed keys plus ``head.``;
- a whole MMPose pose checkpoint (a COCO RTMPose or HRNet): ``state_dict`` with
  ``backbone.`` and ``head.`` keys, the head shaped for another landmark count.

MMEngine's ``Pretrained`` init applied to the whole pose estimator without a prefix matches
none of a backbone file's keys and only logs a warning, so training would go on from random
weights. Here the key prefix is found by matching the file's tensors to the backbone's by name
and shape (an explicit ``pretrained_prefix`` overrides the search), the load is left to
MMEngine's ``Pretrained`` init on the backbone with that prefix (so a run's dumped
``config.py`` loads the same way under MMPose's own tools), and a file that would leave more
than :data:`MAX_UNLOADED` of the backbone's tensors unloaded stops the run before training,
naming the file, the count and a few keys it lacks.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cephalo.errors import DataError

MAX_UNLOADED = 5
"""Backbone tensors a pretrained file may leave at their initial values ("all but a
handful"); a published file for the same network leaves none."""

PREFIXES = ("", "backbone.", "module.backbone.", "module.")
"""Where the backbone's keys may sit in a file, tried in this order."""


class PretrainedError(DataError):
    """A pretrained file that does not initialise the run's backbone."""


@dataclass(frozen=True)
class Match:
    """How a pretrained file maps onto a backbone."""

    checkpoint: str
    prefix: str
    loaded: int
    """Backbone tensors the file provides, by name and shape."""
    total: int
    """The backbone's tensors (parameters and running statistics; BN batch counters are not
    counted: published files often lack them, and they do not affect the weights)."""
    unloaded: tuple[str, ...]
    """Backbone keys the file has no tensor of that name and shape for."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (as ``metrics.json`` records it)."""
        return dict(asdict(self), unloaded=list(self.unloaded))

    def describe(self) -> str:
        shown = f", prefix {self.prefix!r}" if self.prefix else ", unprefixed"
        return (
            f"pretrained: {self.loaded}/{self.total} backbone tensors from {self.checkpoint}{shown}"
        )


def checkpoint_tensors(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """The tensors of a checkpoint file as ``{key: shape}``: its ``state_dict`` when it has
    one (as MMEngine reads it), else the file's own top level. Loaded weights-only."""
    import torch

    from cephalo.checkpoints import CheckpointError, load_checkpoint_file

    try:
        data = load_checkpoint_file(path, map_location="cpu")
    except (CheckpointError, FileNotFoundError) as error:
        raise PretrainedError(f"pretrained file {path}: {error}") from None
    if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping):
        raise PretrainedError(f"pretrained file {path} holds no state dict ({type(data).__name__})")
    return {str(key): tuple(value.shape) for key, value in data.items() if torch.is_tensor(value)}


def backbone_tensors(backbone: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of the backbone a config describes, built through MMPose's registry,
    without the BN batch counters."""
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    config = {key: value for key, value in backbone.items() if key != "init_cfg"}
    module = MODELS.build(copy.deepcopy(config))
    return {
        key: tuple(value.shape)
        for key, value in module.state_dict().items()
        if not key.endswith("num_batches_tracked")
    }


def match(
    checkpoint: str,
    file: Mapping[str, tuple[int, ...]],
    backbone: Mapping[str, tuple[int, ...]],
    prefix: str | None = None,
) -> Match:
    """The best mapping of the file's tensors onto the backbone's: the given ``prefix``, or
    the one of :data:`PREFIXES` under which most backbone tensors are found."""

    def under(candidate: str) -> Match:
        missing = [key for key, shape in backbone.items() if file.get(candidate + key) != shape]
        return Match(
            checkpoint=checkpoint,
            prefix=candidate,
            loaded=len(backbone) - len(missing),
            total=len(backbone),
            unloaded=tuple(missing),
        )

    if prefix is not None:
        return under(prefix)
    return max((under(candidate) for candidate in PREFIXES), key=lambda m: m.loaded)


def check(found: Match, file: Mapping[str, tuple[int, ...]]) -> Match:
    """``found``, or PretrainedError when it would leave too many tensors unloaded."""
    if found.total - found.loaded <= MAX_UNLOADED:
        return found
    example_keys = ", ".join(list(file)[:3]) or "none"
    raise PretrainedError(
        f"pretrained file {found.checkpoint} initialises only {found.loaded} of the backbone's "
        f"{found.total} tensors (prefix {found.prefix!r}); the backbone's "
        f"{', '.join(found.unloaded[:4])} ... are not in it with the right shape. The file's "
        f"keys look like: {example_keys}. Is it a checkpoint of another network or size? "
        "(pretrained_prefix sets the key prefix by hand)"
    )


def with_pretrained(
    config: dict[str, Any], path: str, prefix: str | None = None
) -> tuple[dict[str, Any], Match]:
    """``config`` with its backbone initialised from ``path`` by MMEngine's ``Pretrained``
    init, and how the file matched; PretrainedError when it does not fit the backbone."""
    file = checkpoint_tensors(path)
    found = check(
        match(str(path), file, backbone_tensors(config["model"]["backbone"]), prefix), file
    )
    init_cfg = dict(type="Pretrained", checkpoint=str(path))
    if found.prefix:
        init_cfg["prefix"] = found.prefix
    config = copy.deepcopy(config)
    config["model"]["backbone"]["init_cfg"] = init_cfg
    return config, found
