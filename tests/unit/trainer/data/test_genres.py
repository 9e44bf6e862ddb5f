"""Item genres from GroupLens metadata, mapped to internal ids."""

from __future__ import annotations

from pathlib import Path

from recops_trainer.data.genres import load_genres


def test_movies_dat_through_a_sasrec_item_map(tmp_path: Path) -> None:
    movies = tmp_path / "movies.dat"
    movies.write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Jumanji (1995)::Adventure\n"
        "5::Caf\xe9 (1999)::Drama\n".encode("iso-8859-1")
    )
    id_map = tmp_path / "item_ids.txt"
    id_map.write_text("1 2\n2 5\n3 1\n")
    # Snapshot item ids are the SASRec file's ids 1, 2, 3 (internal ids 1, 2, 3).
    genres = load_genres(movies, ["1", "2", "3"], id_map)
    assert genres == {
        1: frozenset({"Adventure"}),
        2: frozenset({"Drama"}),
        3: frozenset({"Animation", "Children's", "Comedy"}),
    }


def test_ml100k_u_item_flags(tmp_path: Path) -> None:
    flags = ["0"] * 19
    flags[1] = flags[5] = "1"  # Action, Comedy
    item = tmp_path / "u.item"
    item.write_text("7|Movie (1995)|01-Jan-1995||http://x|" + "|".join(flags) + "\n")
    assert load_genres(item, ["7"]) == {1: frozenset({"Action", "Comedy"})}
