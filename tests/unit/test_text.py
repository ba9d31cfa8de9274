"""One clean line and one plain-text table, for messages and the CLI alike."""

from gateway.domain.text import clean_text, text_table


def test_a_clean_line_has_no_control_characters_and_a_bounded_length():
    assert clean_text("a\n\tb  c\u200b", 10) == "a b c"
    assert clean_text("abcdefghijkl", 5) == "abcd…"
    assert clean_text(None) == ""


def test_a_table_aligns_its_columns_under_a_rule():
    assert text_table(["A", "Bee"], [["xx", "y"]]).splitlines() == ["  A   Bee", "  --  ---",
                                                                    "  xx  y"]


def test_a_table_without_rule_or_indent_for_the_terminal():
    assert text_table(["ID", "NAME"], [[0, "fe0*"], [12, "fe\n1"]], indent="",
                      rule=False).splitlines() == ["ID  NAME", "0   fe0*", "12  fe 1"]


def test_a_long_cell_is_cut_and_a_table_without_rows_is_its_headers():
    assert text_table(["N"], [["x" * 10]], max_width=4).splitlines()[2] == "  xxx…"
    assert text_table(["ID", "NAME"], [], rule=False) == "  ID  NAME"
