"""The README's Python example runs as written (on the bundled Adult data)."""

import os
import re

from conftest import ROOT, ledger_entries


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Python section has one example"
    return blocks[0]


def test_readme_example_runs(scratch, capsys):
    # The example uses the repository's relative paths; run it in a scratch folder that has
    # them, so that its ledger and outputs stay there.
    os.symlink(ROOT / "data", scratch / "data")
    os.symlink(ROOT / "schemas", scratch / "schemas")
    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out.split()
    assert out[0] in ("True", "False") and out[1] in ("pass", "fail")
    assert (out[0] == "True") == (out[1] == "pass")
    assert (scratch / "adult-model.json").is_file()
    assert (scratch / "adult-audit.html").read_text().lstrip().lower().startswith("<!doctype html")
    (entry,) = ledger_entries(scratch / ".privsynth" / "ledger.jsonl")
    assert entry["command"].startswith("fit --mechanism aim")
