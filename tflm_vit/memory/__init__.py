"""Arena memory for TFLM: an exact model of what TFLM allocates, a planner that lets op
outputs overwrite their inputs (token overwriting), TFLM's offline plan to carry it, a
checker for any plan, and the lower bound no plan can beat."""

from tflm_vit.memory.api import PlannedModel, plan_model
from tflm_vit.memory.bound import head_lower_bound
from tflm_vit.memory.check import check_plan
from tflm_vit.memory.offline_plan import read_plan, write_plan
from tflm_vit.memory.predict import MemoryPrediction, predict

__all__ = ["MemoryPrediction", "PlannedModel", "check_plan", "head_lower_bound",
           "plan_model", "predict", "read_plan", "write_plan"]
