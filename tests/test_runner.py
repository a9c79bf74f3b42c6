"""The runner's own logic: section progress lines."""


def test_section_titles_follow_the_notebook_headings():
    from kit.core.paths import NOTEBOOKS_DIR
    from kit.runs.sections import section_titles

    titles = section_titles(NOTEBOOKS_DIR / "demo.ipynb")
    # papermill numbers cells from 1 and inserts its injected-parameters cell after the
    # parameters cell, so every cell after it moves one place down
    assert titles[1] == "Demo: one answer from a vision-language model on vLLM"
    assert titles[3] == titles[2]  # the injected cell belongs to the parameters' section
    assert list(dict.fromkeys(titles.values()))[1:] == [
        "Inputs",
        "Engine",
        "Answer",
        "Timing",
        "Environment",
    ]
