"""Reading rich tables back out of a command's output, part by part."""

from __future__ import annotations


def _cells(line: str, edge: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip(edge).split(edge)]


def headers(output: str, keep: int = 1) -> list[str]:
    """Every header across the table's parts, the repeated name columns once."""
    parts = [_cells(line, "┃") for line in output.splitlines() if line.startswith("┃")]
    return parts[0][:keep] + [h for part in parts for h in part[keep:]] if parts else []


def row(output: str, label: str, keep: int = 1) -> list[str]:
    """The figures of the row named `label`, joined from every part that shows it."""
    found = [_cells(line, "│") for line in output.splitlines() if line.startswith(f"│ {label} ")]
    return [cell for part in found for cell in part[keep:]]
