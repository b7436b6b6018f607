"""The README's links to files in this repository point at files that exist."""
import re

from conftest import ROOT


def test_every_local_link_in_the_readme_exists():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local, "expected the README to link at least one local file (the screenshot)"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"
