import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_two_one_line_commands() -> None:
    block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1).strip().splitlines()
    assert len(block) == 2
    assert block[0].startswith("pip install . && lrpredict suggest ")
    assert "python -m pytest" in block[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert block[1] in ci  # CI runs the README's test command verbatim


def test_readme_python_snippets_run() -> None:
    code = "\n".join(re.findall(r"```python\n(.*?)```", README.read_text(), re.S))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
