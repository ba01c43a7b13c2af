"""The public surface: exactly `selfexplain.__all__`, loaded lazily, each function documented Google-style."""

import inspect
import subprocess
import sys

import selfexplain

SURFACE = {
    "__version__", "evaluate", "attribute", "construct", "train", "train_rl", "rejudge", "cot", "CotResult", "reproduce",
    "load_experiment", "write_study_report", "EvalResult", "AttributeResult", "ConstructResult", "TrainResult",
    "Hooks", "Experiment", "Registry", "TASKS", "STYLES", "BACKENDS", "PRESETS", "register_task", "get_task",
    "load_task_file", "TaskSpec", "register_style", "get_style", "Style", "register_backend", "load_backend",
    "Backend", "Generation", "UserError",
}


def test_the_public_surface_is_exactly_all():
    assert set(selfexplain.__all__) == SURFACE and len(selfexplain.__all__) == len(SURFACE)
    namespace: dict = {}
    exec("from selfexplain import *", namespace)
    assert set(namespace) - {"__builtins__"} == SURFACE


def test_importing_the_package_loads_no_pipeline_module():
    code = "import sys, selfexplain; print(sorted(m for m in sys.modules if m.startswith('selfexplain.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_function_documents_its_arguments_and_result():
    for name in sorted(SURFACE - {"__version__"}):
        obj = getattr(selfexplain, name)
        assert inspect.getdoc(obj), name
        if not inspect.isfunction(obj):
            continue
        doc, sig = inspect.getdoc(obj), inspect.signature(obj)
        if sig.parameters:
            assert "Args:" in doc, f"{name}: no Args section"
            documented = doc.split("Args:", 1)[1].split("Returns:", 1)[0].split("Raises:", 1)[0]
            missing = [p for p in sig.parameters if p not in documented]
            assert not missing, f"{name}: {missing} not documented"
        if sig.return_annotation not in (None, "None", inspect.Signature.empty):
            assert "Returns:" in doc, f"{name}: no Returns section"
