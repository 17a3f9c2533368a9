"""The training parameters a notebook, an experiment spec or a tuning trial may set.

One typed, validated model: unknown names are rejected (a misspelled papermill parameter is
an error, not a silently ignored value) and so are settings that do not fit the model family
(a SimCC split ratio for HRNet, a heatmap codec for RTMPose).

**The sigma convention.** ``sigma`` is the standard deviation of the target Gaussian in
pixels of a model input 256 pixels wide: at ``input_size`` (512, 512) a sigma of 3 is 6 input
pixels, 12 SimCC bins at split ratio 2, or 1.5 heatmap pixels at stride 4. The whole image
is the model's input, so one value means the same anatomical extent at every input size,
split ratio and heatmap stride, and Optuna can tune it independently of them. For reference,
the organisers' baselines used 3 (RTMPose-m, 512 px, SimCC sigma 12) and 4 (HRNet, 512 px,
heatmap sigma 2 at stride 4); the challenge winner 1.5 (sigma 6 at 1024 px, stride 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cephalo.errors import validation_problems
from cephalo.models.zoo import get_variant

DEFAULT_SIGMA = {"rtmpose": 3.0, "hrnet": 4.0}
SELECTION_RULES = {
    "MRE": "less",
    "SDR 2.0mm": "greater",
    "SDR 2.5mm": "greater",
    "SDR 3.0mm": "greater",
    "SDR 4.0mm": "greater",
}


class TrainParams(BaseModel):
    """Everything that decides how one model is trained and evaluated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "rtmpose-t"
    input_size: tuple[int, int] = (256, 256)
    """Model input (width, height); multiples of 32."""
    sigma: float | None = Field(default=None, gt=0)
    """Target Gaussian std, in pixels of a 256-px-wide input (see the module docstring);
    None: the family default."""
    simcc_split_ratio: float | None = Field(default=None, gt=0)
    """RTMPose only: SimCC bins per input pixel (default 2.0)."""
    codec: Literal["msra", "udp"] | None = None
    """HRNet only: ``msra`` (decoded with DARK, unbiased) or ``udp``; default ``msra``."""
    heatmap_stride: Literal[1, 2, 4] | None = None
    """HRNet only: input pixels per heatmap pixel (4: HRNet's native output; 2 and 1 add
    deconvolution layers); default 4."""
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=8, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.05, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: float = Field(default=1.0, ge=0)
    augmentation: float = Field(default=0.5, ge=0, le=1)
    """Strength of geometric and photometric augmentation: 0 none, 1 the challenge winner's
    (scale 0.5-1.5, rotation up to 80 degrees)."""
    flip: bool = False
    """Random horizontal flips while training (identity flip indices). A flipped
    cephalogram faces left, so the model must also learn which way the face looks; every
    centre's images face right, and on small data flips make anterior landmarks flicker to
    their mirror positions. Worth measuring with long training, not a default."""
    flip_test: bool | None = None
    """Average each prediction with that of the mirrored image; None: as ``flip`` (a model
    that never saw a mirrored image predicts nonsense on one)."""
    val_interval: int = Field(default=1, ge=1)
    select_by: Literal["MRE", "SDR 2.0mm", "SDR 2.5mm", "SDR 3.0mm", "SDR 4.0mm"] = "MRE"
    """Metric that picks the best checkpoint (and drives early stopping)."""
    early_stop_patience: int | None = Field(default=None, ge=1)
    """Validation rounds without improvement before stopping; None: never stop early."""
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto``: a GPU when there is one; ``cuda``: a GPU or a clear error at once (never a
    silent run on the CPU); ``cpu`` hides GPUs from this process."""
    processes: int = Field(default=1, ge=1)
    """Data-parallel training processes (MMEngine's PyTorch launcher): one per GPU, or CPU
    processes with gloo. ``batch_size`` is per process."""
    num_workers: int | None = Field(default=None, ge=0)
    """Data-loading processes per training process; None: chosen by device (none on a CPU,
    up to 8 per GPU; :func:`cephalo.models.config.num_workers`)."""
    pretrained: str | None = None
    """A local checkpoint to start the backbone from (nothing is downloaded): an ImageNet
    backbone as OpenMMLab publishes it, or a whole MMPose pose checkpoint (its head is not
    used). See :mod:`cephalo.models.pretrained`."""
    pretrained_prefix: str | None = None
    """The prefix of the backbone's keys in ``pretrained`` (``""``: none, ``"backbone."``);
    None: found by matching the file's tensors to the backbone's."""
    training_cache: bool = True
    """Train (and validate while training) on the images reduced to what the input needs
    (:func:`cephalo.models.config.cache_long_side`; :mod:`cephalo.data.cache`) instead of
    decoding the full-size PNGs every epoch. Out-of-fold and test predictions always use the
    full-size images."""
    save_raw: bool = False
    """Also save SimCC vectors / heatmaps with the predictions (distribution-level fusion)."""

    @property
    def family(self) -> str:
        return get_variant(self.model).family

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        get_variant(name)
        return name

    @field_validator("input_size")
    @classmethod
    def _multiple_of_32(cls, size: tuple[int, int]) -> tuple[int, int]:
        if any(side < 64 or side % 32 for side in size):
            raise ValueError(f"input_size sides must be multiples of 32, >= 64; got {size}")
        return size

    @field_validator("pretrained")
    @classmethod
    def _local_checkpoint(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).is_file():
            raise ValueError(
                f"pretrained checkpoint {path} does not exist (only local files are used)"
            )
        return path

    @model_validator(mode="after")
    def _fits_the_family(self) -> TrainParams:
        only = {"rtmpose": ["simcc_split_ratio"], "hrnet": ["codec", "heatmap_stride"]}
        for family, names in only.items():
            for name in names:
                if self.family != family and getattr(self, name) is not None:
                    raise ValueError(f"{name} applies to {family} models only, not {self.model}")
        if self.pretrained_prefix is not None and self.pretrained is None:
            raise ValueError("pretrained_prefix needs a pretrained file")
        return self


def parse_params(values: dict[str, Any]) -> TrainParams:
    """Validate raw parameters (from papermill, YAML or Optuna) into :class:`TrainParams`,
    with one readable line per problem."""
    try:
        return TrainParams(**values)
    except ValidationError as error:
        problems = validation_problems(error, TrainParams)
        raise ValueError("invalid training parameters:\n  " + "\n  ".join(problems)) from None


def trained_params(values: dict[str, Any]) -> TrainParams:
    """The parameters of a trained run, to rebuild its model for prediction: its checkpoint
    holds every weight, so the ``pretrained`` file it started from is not needed (and may be
    gone), and it predicts on whatever the machine that predicts has (``device: auto``)."""
    return parse_params({**values, "pretrained": None, "pretrained_prefix": None, "device": "auto"})
