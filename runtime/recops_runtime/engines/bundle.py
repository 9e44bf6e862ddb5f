"""The export bundle: what the exporter hands to every target's builder.

::

    export.json        ExportInfo (below)
    reference.pt2      the model's forward as a torch.export program (the cpu-torch reference)
    model.onnx         the serving graph in ONNX: the same scores, dynamic batch and history
                       length (a history shorter than maxlen scores as its left-padded form),
                       which also serves the edge build's shorter history
    id_maps.json       copied from the model folder
    evaluation.npz     real users of the evaluation split (parity)
    calibration.npz    other real users' sequences (int8 calibration)
    drift_reference.npz  the training data's item popularity and history lengths (drift)

One bundle serves every target, so all engines of a model version are compared against
the same reference on the same users.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recops_contracts.engine_manifest import ID_MAPS_FILE, InputSpec
from recops_runtime.engines.errors import CorruptEngineError
from recops_runtime.engines.evaluation import UserSequences
from recops_runtime.telemetry.traffic_drift import REFERENCE_FILE as DRIFT_REFERENCE_FILE

EXPORT_FILE = "export.json"
REFERENCE_FILE = "reference.pt2"
ONNX_FILE = "model.onnx"
EVALUATION_FILE = "evaluation.npz"
CALIBRATION_FILE = "calibration.npz"


class ExportInfo(BaseModel):
    """Where the bundle came from and what its graphs take."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = 1
    input_spec: InputSpec
    edge_maxlen: int | None = Field(
        default=None, ge=1, description="History length of the edge build; None: no edge."
    )
    opset: int = Field(ge=7)
    model_name: str | None = None
    model_version: str
    model_sha256: str
    dataset_hash: str | None = None
    tool_versions: dict[str, str] = Field(default_factory=dict)


class ExportBundle:
    """A bundle folder, read back; file paths are resolved, not yet opened."""

    def __init__(self, root: Path) -> None:
        self.root = root
        path = root / EXPORT_FILE
        if not path.is_file():
            raise CorruptEngineError(
                f"{root} has no {EXPORT_FILE}: export the model first (recops compile does)"
            )
        try:
            self.info = ExportInfo.model_validate_json(path.read_bytes())
        except ValidationError as error:
            raise CorruptEngineError(
                f"{path} is not a valid export description: {error}"
            ) from error

    def reference(self) -> Path:
        return self._file(REFERENCE_FILE)

    def onnx(self) -> Path:
        return self._file(ONNX_FILE)

    @property
    def id_maps(self) -> Path:
        return self._file(ID_MAPS_FILE)

    @property
    def drift_reference(self) -> Path | None:
        """Bundles exported before drift was measured have none."""
        path = self.root / DRIFT_REFERENCE_FILE
        return path if path.is_file() else None

    def evaluation(self) -> UserSequences:
        return UserSequences.load(self._file(EVALUATION_FILE))

    def calibration(self) -> UserSequences:
        return UserSequences.load(self._file(CALIBRATION_FILE))

    def input_spec(self, edge: bool = False) -> InputSpec:
        if not edge:
            return self.info.input_spec
        if self.info.edge_maxlen is None:
            raise CorruptEngineError(
                f"{self.root} was exported without an edge history length; export it again "
                "for the edge-int8 target"
            )
        if not self.info.input_spec.dynamic_length:
            raise CorruptEngineError(f"{self.root}/{ONNX_FILE} takes only full histories")
        return self.info.input_spec.model_copy(update={"maxlen": self.info.edge_maxlen})

    def _file(self, name: str) -> Path:
        path = self.root / name
        if not path.is_file():
            raise CorruptEngineError(f"export bundle file {path} is missing")
        return path
