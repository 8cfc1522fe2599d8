"""The README's promises: its Python example runs, and its two set-up commands are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_python_example_runs_and_segments_the_coins(tmp_path, monkeypatch, capsys):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    mask = namespace["mask"]
    assert mask.shape == (303, 384)
    assert set(np.unique(mask)) == {1, 2}
    coin_fraction = float((mask == 2).mean())
    assert 0.2 < coin_fraction < 0.6, coin_fraction  # coins cover roughly a third of the picture
    assert (tmp_path / "coins.segmodel").is_file()
    assert "coin" in capsys.readouterr().out


def test_readme_commands_are_the_ones_ci_runs():
    bash_blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    assert "streamlit run streamlit_app.py" in bash_blocks[0]
    assert bash_blocks[1].strip() == "bash tests/run.sh"
    assert "bash tests/run.sh" in (REPO / ".ci" / "run").read_text()
    assert (REPO / "streamlit_app.py").is_file()
