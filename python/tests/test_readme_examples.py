"""The README's Python examples run as written. They sit between
`<!-- python-example:begin -->` and `<!-- python-example:end -->` in README.md."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- python-example:begin -->", "<!-- python-example:end -->"


def _examples():
    text = (ROOT / "README.md").read_text()
    sections = re.findall(re.escape(BEGIN) + r"(.*?)" + re.escape(END), text, re.S)
    blocks = [b for s in sections for b in re.findall(r"```python\n(.*?)```", s, re.S)]
    assert blocks, "README.md: no ```python blocks between the python-example markers"
    return [pytest.param(b, id=f"README-{i}") for i, b in enumerate(blocks)]


@pytest.mark.parametrize("code", _examples())
def test_readme_example_runs(code, tmp_path, monkeypatch):
    if "import torch" in code:
        pytest.importorskip("torch")
    if "import faiss" in code:
        pytest.importorskip("faiss")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README example", "exec"), {"__name__": "__main__"})
