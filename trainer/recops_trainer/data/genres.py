"""Item genres from GroupLens metadata, keyed by internal item id (for genre diversity)."""

from __future__ import annotations

from pathlib import Path

# ML-100K's u.item has 19 binary genre columns in this order (see its README).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def _read_movie_genres(path: Path) -> dict[str, frozenset[str]]:
    """``movies.dat`` (``id::title::A|B``), ``movies.csv`` or ML-100K ``u.item``."""
    text = path.read_text(encoding="iso-8859-1")
    out: dict[str, frozenset[str]] = {}
    if path.suffix == ".csv":
        import csv

        rows = csv.DictReader(text.splitlines())
        for row in rows:
            out[row["movieId"]] = frozenset(row["genres"].split("|")) - {"(no genres listed)"}
        return out
    for line in text.splitlines():
        if "::" in line:
            movie, _title, genres = line.split("::")[:3]
            out[movie] = frozenset(genres.split("|"))
        elif "|" in line:
            fields = line.split("|")
            flags = fields[-len(ML100K_GENRES) :]
            out[fields[0]] = frozenset(
                g for g, f in zip(ML100K_GENRES, flags, strict=True) if f == "1"
            )
    return out


def load_genres(
    movies: Path, item_ids: list[str], id_map: Path | None = None
) -> dict[int, frozenset[str]]:
    """Genres per internal item id.

    ``item_ids`` are the snapshot's original ids; ``id_map`` (SASRec's ``item_ids.txt``,
    ``file_id movie_id`` per line) translates them when they are not GroupLens movie ids.
    """
    by_movie = _read_movie_genres(Path(movies))
    translate: dict[str, str] = {}
    if id_map is not None:
        for line in Path(id_map).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                translate[parts[0]] = parts[1]
    out: dict[int, frozenset[str]] = {}
    for index, original in enumerate(item_ids, start=1):
        genres = by_movie.get(translate.get(original, original))
        if genres:
            out[index] = genres
    return out
