"""Package-level checks: layering rules and the README example."""

import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]
SRC = PKG / "src" / "rlinf" / "algos"


def test_layer0_imports_only_torch_and_stdlib():
    for path in SRC.glob("*.py"):
        text = path.read_text()
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                assert "numpy" not in stripped, f"{path.name}: {stripped}"
                if "rlinf" in stripped:
                    assert stripped.startswith(("from rlinf.algos", "import rlinf.algos")), (
                        f"{path.name} imports another rlinf package: {stripped}"
                    )


def test_namespace_package_and_explicit_all():
    assert not (PKG / "src" / "rlinf" / "__init__.py").exists()
    for path in SRC.glob("*.py"):
        text = path.read_text()
        assert "__all__" in text, f"{path.name} has no __all__"
        assert len(text.splitlines()) <= 300, f"{path.name} is too long"


def test_readme_example_runs(capsys):
    text = (PKG / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("1 {'clip_frac_low'")
