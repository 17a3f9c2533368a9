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

from cephalo.errors import ParamsError, validation_problems
from cephalo.models.zoo import get_variant

DEFAULT_SIGMA = {"rtmpose": 3.0, "hrnet": 4.0}


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
    dark: bool | None = None
    """HRNet ``msra`` only: unbiased (DARK) targets and decoding; default true. The
    organisers' HRNet used plain MSRA heatmaps, the challenge winner DARK."""
    loss: Literal["mse", "adaptive-wing"] | None = None
    """HRNet only: the heatmap loss (default ``mse``; ``adaptive-wing``: MMPose's
    AdaptiveWingLoss, as in one of the organisers' HRNet runs)."""
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=8, ge=1)
    optimizer: Literal["adamw", "adam"] = "adamw"
    """AdamW (decoupled weight decay; the RTMPose recipes) or Adam (the HRNet recipes)."""
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float | None = Field(default=None, ge=0)
    """None: 0.05 with AdamW, none with Adam. Norm layers and biases are never decayed."""
    schedule: Literal["cosine", "flat-cosine", "multistep", "constant"] = "cosine"
    """The learning rate after the warm-up: ``cosine`` over all epochs, ``flat-cosine`` flat
    until ``cosine_from`` then cosine (RTMPose's recipes), ``multistep`` times ``gamma`` at
    each of ``milestones`` (HRNet's), ``constant``."""
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1)
    """Where the cosine schedules end, as a fraction of ``lr``."""
    cosine_from: int | None = Field(default=None, ge=0)
    """``flat-cosine`` only: the epoch the cosine starts at; default half of ``epochs``."""
    milestones: tuple[int, ...] = ()
    """``multistep`` only: the epochs at which the learning rate is multiplied by ``gamma``."""
    gamma: float = Field(default=0.1, gt=0, le=1)
    warmup_epochs: float = Field(default=1.0, ge=0)
    warmup_iters: int | None = Field(default=None, ge=1)
    """A linear warm-up counted in iterations instead (the public recipes' 500 or 1000)."""
    ema: float | None = Field(default=None, gt=0, lt=1)
    """Exponential moving average of the weights (MMEngine's ExpMomentumEMA, this
    momentum; RTMPose's recipes use 2e-4): validation and checkpoints use the average."""
    amp: bool = False
    """Mixed precision on a GPU: MMEngine's AmpOptimWrapper (dynamic loss scale) in training,
    autocast in prediction. Ignored on a CPU."""
    augmentation: float = Field(default=0.5, ge=0, le=1)
    """Strength of geometric and photometric augmentation: 0 none, 1 the challenge winner's
    geometry (scale 0.5-1.5, rotation up to 80 degrees, shift up to 0.16). ``scale_range``,
    ``rotation`` and ``shift`` override the geometry it implies."""
    scale_range: tuple[float, float] | None = None
    """The crop's random scale range (MMPose's RandomBBoxTransform), e.g. [0.8, 1.2]."""
    rotation: float | None = Field(default=None, ge=0, le=180)
    """The largest random rotation in degrees (applied with probability 0.6)."""
    shift: float | None = Field(default=None, ge=0, le=1)
    """The largest random shift, a fraction of the image (applied with probability 0.3)."""
    blur: float = Field(default=0.0, ge=0, le=1)
    """Probability of Albumentations' Blur on the input crop."""
    median_blur: float = Field(default=0.0, ge=0, le=1)
    """Probability of Albumentations' MedianBlur on the input crop."""
    coarse_dropout: float = Field(default=0.0, ge=0, le=1)
    """Probability of blanking one rectangle of 10-20 % of the crop's side (Albumentations'
    CoarseDropout, as in the organisers' RTMPose recipe)."""
    stage2_epochs: int = Field(default=0, ge=0)
    """The last N epochs train with the milder augmentation of ``stage2`` (MMDetection's
    PipelineSwitchHook, as RTMPose's recipes do)."""
    stage2: dict[str, Any] = {}
    """The augmentation settings that change for the last ``stage2_epochs`` epochs (any of
    ``AUGMENTATION_FIELDS``), e.g. ``{rotation: 10, shift: 0, coarse_dropout: 0.5}``."""
    flip: bool = False
    """Random horizontal flips while training (identity flip indices: a lateral view has no
    left/right pairs). A flipped cephalogram faces left, so the model must also learn which
    way the face looks: every public recipe trains with flips, but on the demo's data
    RTMPose-tiny does not learn it (HRNet-tiny does, given twice the epochs). Measure it."""
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
    up to 8 per GPU; :func:`cephalo.models.device.num_workers`)."""
    pretrained: str | None = None
    """A local checkpoint to start the backbone from (nothing is downloaded): an ImageNet
    backbone as OpenMMLab publishes it, or a whole MMPose pose checkpoint (its head is not
    used). See :mod:`cephalo.models.pretrained`."""
    pretrained_prefix: str | None = None
    """The prefix of the backbone's keys in ``pretrained`` (``""``: none, ``"backbone."``);
    None: found by matching the file's tensors to the backbone's."""
    training_cache: bool = True
    """Train (and validate while training) on the images reduced to what the input needs
    (:func:`cephalo.models.pipelines.cache_long_side`; :mod:`cephalo.data.cache`) instead of
    decoding the full-size PNGs every epoch. Out-of-fold and test predictions always use the
    full-size images."""
    save_raw: bool = False
    """Also save SimCC vectors / heatmaps with the predictions (distribution-level fusion)."""
    log_to: tuple[Literal["tensorboard", "mlflow"], ...] = ()
    """Training curves also to TensorBoard (event files in the run's ``train/``) or MLflow
    (``MLFLOW_TRACKING_URI``, else an ``mlruns`` folder in ``train/``); their packages are
    not part of the kit's environment."""
    cfg_options: dict[str, Any] = {}
    """Dotted MMEngine config keys set last (MMEngine's ``merge_from_dict``), for what no
    parameter models, e.g. ``{"optim_wrapper.clip_grad": {"max_norm": 1.0}}``."""

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

    @field_validator("scale_range")
    @classmethod
    def _around_one(cls, scale: tuple[float, float] | None) -> tuple[float, float] | None:
        if scale is not None and not 0 < scale[0] <= 1 <= scale[1]:
            raise ValueError(
                f"scale_range must be [low, high] with 0 < low <= 1 <= high; got {scale}"
            )
        return scale

    @field_validator("stage2")
    @classmethod
    def _augmentation_only(cls, changes: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(changes) - set(AUGMENTATION_FIELDS))
        if unknown:
            raise ValueError(
                f"stage2 changes augmentation only; not {', '.join(unknown)} "
                f"(known: {', '.join(AUGMENTATION_FIELDS)})"
            )
        return changes

    @model_validator(mode="after")
    def _schedule_settings(self) -> TrainParams:
        if self.cosine_from is not None and self.schedule != "flat-cosine":
            raise ValueError("cosine_from applies to schedule: flat-cosine only")
        if self.cosine_from is not None and self.cosine_from >= self.epochs:
            raise ValueError(f"cosine_from {self.cosine_from} must be before epoch {self.epochs}")
        if (self.schedule == "multistep") != bool(self.milestones):
            raise ValueError("schedule: multistep needs milestones, and milestones need it")
        if self.stage2 and not self.stage2_epochs:
            raise ValueError("stage2 needs stage2_epochs (how many last epochs it applies to)")
        if self.stage2_epochs >= self.epochs:
            raise ValueError(f"stage2_epochs {self.stage2_epochs} must be below epochs")
        return self

    @model_validator(mode="after")
    def _fits_the_family(self) -> TrainParams:
        only = {
            "rtmpose": ["simcc_split_ratio"],
            "hrnet": ["codec", "heatmap_stride", "dark", "loss"],
        }
        for family, names in only.items():
            for name in names:
                if self.family != family and getattr(self, name) is not None:
                    raise ValueError(f"{name} applies to {family} models only, not {self.model}")
        if self.pretrained_prefix is not None and self.pretrained is None:
            raise ValueError("pretrained_prefix needs a pretrained file")
        if self.dark is not None and self.codec == "udp":
            raise ValueError("dark applies to codec: msra only")
        return self


AUGMENTATION_FIELDS = (
    "flip",
    "augmentation",
    "scale_range",
    "rotation",
    "shift",
    "blur",
    "median_blur",
    "coarse_dropout",
)
"""What ``stage2`` may change."""


def stage2_params(params: TrainParams) -> TrainParams:
    """The parameters of the last ``stage2_epochs`` epochs: ``stage2``'s augmentation."""
    return parse_params({**params.model_dump(), **params.stage2, "stage2_epochs": 0, "stage2": {}})


def parse_params(values: dict[str, Any]) -> TrainParams:
    """Validate raw parameters (from papermill, YAML or Optuna) into :class:`TrainParams`,
    with one readable line per problem."""
    try:
        return TrainParams(**values)
    except ValidationError as error:
        problems = validation_problems(error, TrainParams)
        raise ParamsError("invalid training parameters:\n  " + "\n  ".join(problems)) from None


def trained_params(values: dict[str, Any]) -> TrainParams:
    """The parameters of a trained run, to rebuild its model for prediction: its checkpoint
    holds every weight, so the ``pretrained`` file it started from is not needed (and may be
    gone), and it predicts on whatever the machine that predicts has (``device: auto``)."""
    return parse_params({**values, "pretrained": None, "pretrained_prefix": None, "device": "auto"})
