"""Reading the benchmark pages' markdown tables back in the smoke tests."""


def markdown_rows(page: str, header_prefix: str) -> dict[str, list[str]]:
    """Rows of the table whose header line starts with `header_prefix`, keyed by first cell."""
    lines = page.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_prefix))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows
