"""The sentence a collection built by other embedders is refused with."""

from __future__ import annotations

from bookchat.stores.identity import IndexIdentity, mismatch_message


def test_another_offline_table_asks_for_a_re_ingest_not_a_setting() -> None:
    # The offline embedder's name carries a fingerprint of its files: a bookchat shipping a
    # new table meets collections built with the old one, and no setting brings those back.
    old = IndexIdentity(
        dense="local:minilm-static-256-08b70b972bca", dense_dims=256, sparse="bm25:v1"
    )
    new = IndexIdentity(
        dense="local:minilm-static-256-0123456789ab", dense_dims=256, sparse="bm25:v1"
    )
    message = mismatch_message(old, new, "book")
    assert "local:minilm-static-256-08b70b972bca" in message
    assert "ships local:minilm-static-256-0123456789ab" in message
    assert "Re-ingest" in message
    assert "BOOKCHAT_EMBEDDER" not in message


def test_lexical_only_collection_names_the_setting_that_built_it() -> None:
    built = IndexIdentity(dense=None, dense_dims=None, sparse="bm25:v1")
    using = IndexIdentity(
        dense="local:minilm-static-256-0123456789ab", dense_dims=256, sparse="bm25:v1"
    )
    message = mismatch_message(built, using, "book")
    assert "no dense embedder" in message
    assert "BOOKCHAT_EMBEDDER=local without the static embedder installed" in message
