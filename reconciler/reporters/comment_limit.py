"""Fit a Markdown report into a GitHub comment (65,536 characters) without breaking it."""

from __future__ import annotations

GITHUB_COMMENT_LIMIT = 65_536


def fit_comment(markdown: str, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """`markdown` unchanged if it fits; else cut at a line, closed cleanly, with a note.

    The cut keeps the head of the report (the summary table comes first), closes an open
    code fence and open <details> blocks so the rest of the comment still renders, and says
    how much was left out and where to find the whole report.
    """
    if len(markdown) <= limit:
        return markdown

    def note(kept: int) -> str:
        return (
            f"\n> ⚠️ **Truncated**: this report has {len(markdown):,} characters, over GitHub's "
            f"{limit:,}-character comment limit; the first {kept:,} are shown. Run the same "
            "command locally, or write the whole report to a file "
            "(`--output markdown=plan.md`, `--output json=plan.json`) and keep it as an "
            "artifact.\n"
        )

    budget = limit - len(note(limit)) - 64  # room for the closing tags
    head = markdown[: max(budget, 0)]
    cut = head.rfind("\n")
    head = head[: cut + 1] if cut >= 0 else ""
    in_fence, open_details = False, 0
    for line in head.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence:  # a value shown inside a diff may contain anything
            open_details += line.count("<details>") - line.count("</details>")
    closers = ["```"] if in_fence else []
    closers += ["</details>"] * max(open_details, 0)
    closing = "\n".join(closers) + "\n" if closers else ""
    return head + closing + note(len(head))
