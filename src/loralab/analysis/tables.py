"""The low-rank study as tables (columns, rows), shared by the CLI and the run report."""

from __future__ import annotations


def rank_table(study: dict) -> tuple[list[str], list[list]]:
    """Columns and rows: accuracy of versions 1 and 2 at each rank, highest rank first."""
    ranks = sorted({r["rank"] for r in study["rows"]}, reverse=True)
    by = {(r["version"], r["rank"]): r["accuracy"] for r in study["rows"]}
    columns = ["rank", "version 1: rank-r W", "version 2: W0 + rank-r ΔW"]
    return columns, [[rank, by[(1, rank)], by[(2, rank)]] for rank in ranks]


def diagnostics_table(study: dict) -> tuple[list[str], list[list]]:
    """Columns and rows: per layer type, the mean norm, effective rank, energy and similarity."""
    rows = study["diagnostics"]
    energy_ranks = [k for k in ("1", "4", "8", "16") if all(k in r["energy"] for r in rows)]
    columns = ["layer type", "layers", "‖ΔW‖_F", "effective rank"] + [f"energy top-{k}" for k in energy_ranks]
    has_similarity = all("similarity" in r for r in rows)
    if has_similarity:
        columns.append(f"similarity to {study['against']['method']} (top-{rows[0]['similarity_rank']})")
    out = []
    for kind in dict.fromkeys(r["type"] for r in rows):
        group = [r for r in rows if r["type"] == kind]

        def mean(values) -> float:
            values = list(values)
            return sum(values) / len(values)

        row = [kind, len(group), mean(r["norm"] for r in group), mean(r["effective_rank"] for r in group)]
        row += [mean(r["energy"][k] for r in group) for k in energy_ranks]
        if has_similarity:
            row.append(mean(r["similarity"] for r in group))
        out.append(row)
    return columns, out
