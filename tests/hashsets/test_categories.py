"""Category schemes: the built-in files, normalising, mapping, custom schemes, validation."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from safeguard.errors import HashSetError
from safeguard.hashsets.categories import (
    Category,
    MappedCategory,
    Scheme,
    Schemes,
    builtin_schemes,
    load_scheme_file,
    load_schemes,
    lookup_key,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schemes() -> Schemes:
    return load_schemes()


# -- the built-in schemes ---------------------------------------------------------------

BUILTIN = {
    "uk": [("A", "Category A", 4), ("B", "Category B", 3), ("C", "Category C", 2),
           ("uncategorised", "Uncategorised", 1), ("not-indecent", "Not indecent", 0)],
    "projectvic": [("0", "Uncategorized", 1), ("1", "Child Abuse Material (CAM)", 4),
                   ("2", "Child Exploitive (Non-CAM) / Age Difficult", 3),
                   ("3", "CGI/Animation - Child Exploitive", 2), ("4", "Comparison Images", 0),
                   ("5", "Non-Pertinent", 0)],
    "interpol": [("baseline", "Baseline", 3), ("non-baseline", "Non-baseline (national)", 2),
                 ("unknown", "Unknown", 1)],
}

#: every documented mapping: (source, target) -> {source code: target code or None}
MAPS: dict[tuple[str, str], dict[str, str | None]] = {
    ("uk", "projectvic"): {"A": "1", "B": "1", "C": "0", "uncategorised": "0",
                           "not-indecent": "5"},
    ("uk", "interpol"): {"A": "unknown", "B": "unknown", "C": "unknown",
                         "uncategorised": "unknown", "not-indecent": None},
    ("projectvic", "uk"): {"0": "uncategorised", "1": "uncategorised", "2": "uncategorised",
                           "3": "uncategorised", "4": "not-indecent", "5": "not-indecent"},
    ("projectvic", "interpol"): {"0": "unknown", "1": "unknown", "2": "unknown",
                                 "3": "unknown", "4": None, "5": None},
    ("interpol", "uk"): {"baseline": "uncategorised", "non-baseline": "uncategorised",
                         "unknown": "uncategorised"},
    ("interpol", "projectvic"): {"baseline": "1", "non-baseline": "0", "unknown": "0"},
}


def test_builtin_scheme_names(schemes: Schemes) -> None:
    assert schemes.names() == ("interpol", "projectvic", "uk")
    assert [s.name for s in builtin_schemes()] == ["interpol", "projectvic", "uk"]
    assert "uk" in schemes and "nope" not in schemes
    assert [s.name for s in schemes] == ["interpol", "projectvic", "uk"]


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_scheme_codes_labels_ranks(schemes: Schemes, name: str) -> None:
    scheme = schemes.get(name)
    assert scheme.codes() == tuple(code for code, _, _ in BUILTIN[name])
    assert [(c.code, c.label, c.rank) for c in scheme.categories] == BUILTIN[name]
    assert scheme.title


def test_builtin_files_load_alone() -> None:
    folder = ROOT / "src/safeguard/hashsets/schemes"
    for name in BUILTIN:
        assert load_scheme_file(folder / f"{name}.toml").name == name


def test_unknown_scheme_names_the_known_ones(schemes: Schemes) -> None:
    with pytest.raises(HashSetError) as err:
        schemes.get("x")
    assert str(err.value) == "unknown category scheme 'x' (known: interpol, projectvic, uk)"
    with pytest.raises(HashSetError, match="unknown category scheme 'x'"):
        schemes.map("A", "uk", "x")


# -- normalising ------------------------------------------------------------------------

@pytest.mark.parametrize(("scheme", "given", "code"), [
    ("uk", "A", "A"), ("uk", "a", "A"), ("uk", " A ", "A"), ("uk", "cat a", "A"),
    ("uk", "Category A", "A"), ("uk", "CAT-A", "A"), ("uk", "category  b", "B"),
    ("uk", "catc", "C"), ("uk", "Not indecent", "not-indecent"),
    ("uk", "NOT_INDECENT", "not-indecent"), ("uk", "uncategorized", "uncategorised"),
    ("uk", "Ungraded", "uncategorised"),
    ("projectvic", "1", "1"), ("projectvic", " 1 ", "1"), ("projectvic", "Cat 1", "1"),
    ("projectvic", "Category 3", "3"), ("projectvic", "CAM", "1"),
    ("projectvic", "Child Abuse Material - (CAM)", "1"),
    ("projectvic", "CAT-1: Child Exploitation (Illegal)", "1"),
    ("projectvic", "Child Exploitive (non-CAM) / Age Difficult", "2"),
    ("projectvic", "Child Exploitive (Non-CAM) Age Difficult", "2"),
    ("projectvic", "CGI/Animation (Child Exploitive)", "3"),
    ("projectvic", "Exemplar/Comparison (Internal Use Only)", "4"),
    ("projectvic", "non-pertinent", "5"), ("projectvic", "CAT-0: Uncategorized", "0"),
    ("interpol", "Baseline", "baseline"), ("interpol", "NON-BASELINE", "non-baseline"),
    ("interpol", "non_baseline", "non-baseline"), ("interpol", "nonbaseline", "non-baseline"),
    ("uk", "notindecent", "not-indecent"), ("uk", "Cat-A", "A"),
    ("interpol", "Non Baseline", "non-baseline"),
    ("interpol", "national", "non-baseline"), ("interpol", "true", "baseline"),
    ("interpol", "False", "non-baseline"), ("interpol", "not assessed", "unknown"),
])
def test_normalise(schemes: Schemes, scheme: str, given: str, code: str) -> None:
    assert schemes.get(scheme).normalise(given) == code


@pytest.mark.parametrize("given", [None, "", "   ", "-", "D", "Category D", "6", "A1"])
def test_normalise_blank_or_unknown_is_none(schemes: Schemes, given: str | None) -> None:
    assert schemes.get("uk").normalise(given) is None
    assert schemes.get("projectvic").normalise(given) is None


def test_normalise_reads_integers_as_text(schemes: Schemes) -> None:
    assert schemes.get("projectvic").normalise(5) == "5"  # type: ignore[arg-type]


def test_lookup_key() -> None:
    assert lookup_key("  CAT-1:  Child (Illegal) ") == "cat1childillegal"
    assert lookup_key("not_indecent") == lookup_key("Not Indecent") == "notindecent"
    assert lookup_key("--") == ""


def test_category_lookup(schemes: Schemes) -> None:
    uk = schemes.get("uk")
    assert uk.category("A") == Category("A", "Category A", 4, ("Cat A",))
    assert uk.category("cat b").code == "B"
    assert uk.rank("not indecent") == 0
    with pytest.raises(HashSetError) as err:
        uk.category("D")
    assert str(err.value) == ("unknown category 'D' in scheme 'uk' "
                              "(known: A, B, C, uncategorised, not-indecent)")


# -- mapping ----------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "target"), sorted(MAPS))
def test_documented_mappings(schemes: Schemes, source: str, target: str) -> None:
    expected = MAPS[source, target]
    assert set(expected) == set(schemes.get(source).codes())
    for code, mapped in expected.items():
        result = schemes.map(code, source, target)
        assert result == MappedCategory(code, code, mapped, known=True), (code, result)
        assert result.unmapped is (mapped is None)
    assert dict(schemes.get(source).maps[target]) == {
        code: mapped for code, mapped in expected.items() if mapped is not None}


def test_mapping_normalises_the_given_code_first(schemes: Schemes) -> None:
    assert schemes.map(" cat b ", "uk", "projectvic") == MappedCategory(
        " cat b ", "B", "1", known=True)
    assert schemes.map("Child Abuse Material - (CAM)", "projectvic", "uk").mapped == (
        "uncategorised")
    assert schemes.map("Baseline", "interpol", "projectvic").mapped == "1"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_identity_within_a_scheme(schemes: Schemes, name: str) -> None:
    for code in schemes.get(name).codes():
        assert schemes.map(code, name, name) == MappedCategory(code, code, code, known=True)
    assert schemes.map("category c", "uk", "uk").mapped == "C"


@pytest.mark.parametrize("given", ["D", "Category 9", "7", "??"])
def test_unknown_code_is_kept_and_marked_unknown(schemes: Schemes, given: str) -> None:
    result = schemes.map(given, "uk", "projectvic")
    assert result == MappedCategory(given, None, None, known=False)
    assert not result.unmapped


@pytest.mark.parametrize("given", [None, "", "  "])
def test_blank_code_maps_to_nothing_and_is_not_reported(schemes: Schemes,
                                                        given: str | None) -> None:
    assert schemes.map(given, "projectvic", "uk") == MappedCategory(given, None, None, True)


def test_no_illegal_code_maps_to_nothing_illegal(schemes: Schemes) -> None:
    checked = 0
    for source in schemes:
        for target_name, table in source.maps.items():
            target = schemes.get(target_name)
            for code, mapped in table.items():
                if source.category(code).rank > 0:
                    assert target.category(mapped).rank > 0, (source.name, code, mapped)
                    checked += 1
    assert checked == 22


def test_every_builtin_map_is_documented(schemes: Schemes) -> None:
    pairs = {(s.name, t) for s in schemes for t in s.maps}
    assert pairs == set(MAPS)


# -- most severe ------------------------------------------------------------------------

@pytest.mark.parametrize(("scheme", "codes", "expected"), [
    ("uk", ["C", "A", "B"], "A"),
    ("uk", ["not-indecent", "uncategorised"], "uncategorised"),
    ("uk", ["uncategorised", "C"], "C"),
    ("uk", ["cat b", "not indecent"], "B"),
    ("uk", ["D", None, "", "C"], "C"),
    ("uk", ["D", None], None),
    ("uk", [], None),
    ("projectvic", ["5", "4"], "4"),  # equal ranks: the one declared first
    ("projectvic", ["4", "5"], "4"),
    ("projectvic", ["0", "5"], "0"),
    ("projectvic", ["3", "2", "0"], "2"),
    ("projectvic", ["1", "2", "3"], "1"),
    ("interpol", ["unknown", "non-baseline", "baseline"], "baseline"),
])
def test_most_severe(schemes: Schemes, scheme: str, codes: list[str | None],
                     expected: str | None) -> None:
    assert schemes.most_severe(codes, scheme) == expected


# -- custom schemes ---------------------------------------------------------------------

UNIT = """\
name = "unit"
title = "Unit grades"

[[category]]
code = "U1"
label = "Unit grade 1"
rank = 2
aliases = ["grade 1", "g1"]

[[category]]
code = "U2"
label = "Unit grade 2"
rank = 1

[[category]]
code = "U0"
label = "Not relevant"
rank = 0

[map.uk]
U1 = "uncategorised"
U2 = "uncategorised"
U0 = "not-indecent"

[map_from.projectvic]
"1" = "U1"
"5" = "U0"
"""


def write(home: Path, name: str, text: str) -> Path:
    folder = home / "schemes"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def test_custom_scheme_from_home(tmp_path: Path) -> None:
    write(tmp_path, "unit.toml", UNIT)
    schemes = load_schemes(tmp_path)
    assert schemes.names() == ("interpol", "projectvic", "uk", "unit")
    unit = schemes.get("unit")
    assert unit.title == "Unit grades"
    assert unit.codes() == ("U1", "U2", "U0")
    assert unit.category("G1") == Category("U1", "Unit grade 1", 2, ("grade 1", "g1"))
    assert schemes.map("grade 1", "unit", "uk") == MappedCategory(
        "grade 1", "U1", "uncategorised", known=True)
    assert schemes.map("U0", "unit", "uk").mapped == "not-indecent"
    assert schemes.map("U9", "unit", "uk") == MappedCategory("U9", None, None, known=False)
    # no map into projectvic: known, but mapped to nothing
    assert schemes.map("U1", "unit", "projectvic").unmapped
    # [map_from.projectvic] becomes part of projectvic's maps
    assert dict(schemes.get("projectvic").maps["unit"]) == {"1": "U1", "5": "U0"}
    assert schemes.map("Cat 1", "projectvic", "unit").mapped == "U1"
    assert schemes.map("3", "projectvic", "unit").unmapped
    assert schemes.most_severe(["U0", "g1", "U2"], "unit") == "U1"
    # the built-ins themselves are unchanged
    assert "unit" not in builtin_schemes()[1].maps


def test_custom_schemes_map_into_each_other(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", """\
        name = "alpha"
        [[category]]
        code = "x"
        label = "X"
        rank = 1
        [map.beta]
        x = "y"
        """)
    write(tmp_path, "b.toml", """\
        name = "beta"
        [[category]]
        code = "y"
        label = "Y"
        rank = 1
        """)
    schemes = load_schemes(tmp_path)
    assert schemes.get("alpha").title == "alpha"
    assert schemes.map("X", "alpha", "beta").mapped == "y"


def test_home_without_schemes_folder_has_builtins_only(tmp_path: Path) -> None:
    assert load_schemes(tmp_path).names() == ("interpol", "projectvic", "uk")


def test_load_scheme_file(tmp_path: Path) -> None:
    scheme = load_scheme_file(write(tmp_path, "unit.toml", UNIT))
    assert isinstance(scheme, Scheme)
    assert scheme.name == "unit"
    assert dict(scheme.maps["uk"]) == {"U1": "uncategorised", "U2": "uncategorised",
                                       "U0": "not-indecent"}
    assert dict(scheme.maps_from["projectvic"]) == {"1": "U1", "5": "U0"}


# -- validation -------------------------------------------------------------------------

ONE = """\
name = "unit"
[[category]]
code = "U1"
label = "Unit grade 1"
rank = 1
"""


def error_of(tmp_path: Path, text: str, name: str = "unit.toml") -> tuple[Path, str]:
    path = write(tmp_path, name, text)
    with pytest.raises(HashSetError) as err:
        load_schemes(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    return path, message


def test_not_toml(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, "name = \nfoo")
    assert message == f"{path}: not TOML: Invalid value (at line 1, column 8)"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "schemes" / "unit.toml"
    path.parent.mkdir()
    path.write_bytes(b"name = \"\xff\"")
    with pytest.raises(HashSetError) as err:
        load_schemes(tmp_path)
    assert str(err.value) == f"{path}: not TOML: not UTF-8 text (byte 8)"


def test_missing_name(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE.replace('name = "unit"\n', ""))
    assert message == f"{path}: missing 'name'"


def test_bad_name(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE.replace('"unit"', '"My Unit"'))
    assert message == (f"{path}: scheme name 'My Unit' must be 1-64 lower-case letters, "
                       "digits, '-' or '_', starting with a letter or digit")


def test_builtin_name_is_refused(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE.replace('"unit"', '"uk"'))
    assert message == f"{path}: scheme name 'uk' is a built-in scheme's; choose another name"


def test_same_name_in_two_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.toml", ONE)
    second, message = error_of(tmp_path, ONE, "b.toml")
    assert message == f"{second}: scheme 'unit' is already defined in {first}"


def test_no_categories(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, 'name = "unit"\n')
    assert message == f"{path}: no [[category]] tables"


def test_unknown_key(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + "colour = 1\n")
    assert message == f"{path}: category 'U1': unknown key 'colour'"
    path, message = error_of(tmp_path, 'maps = 1\n' + ONE)
    assert message == f"{path}: unknown key 'maps'"


def test_missing_code(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE.replace('code = "U1"\n', ""))
    assert message == f"{path}: category 1 has no 'code'"


def test_duplicate_code(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + ONE.split("\n", 1)[1])
    assert message == f"{path}: duplicate code 'U1'"


def test_code_clashing_after_normalising(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + ONE.split("\n", 1)[1].replace('"U1"', '"u-1"'))
    assert message == (f"{path}: code 'u-1' is the same as code 'U1' "
                       "(case and punctuation are ignored)")


def test_duplicate_alias_across_codes(tmp_path: Path) -> None:
    text = ONE + 'aliases = ["g1"]\n' + """\
[[category]]
code = "U2"
label = "Unit grade 2"
rank = 1
aliases = ["G-1"]
"""
    path, message = error_of(tmp_path, text)
    assert message == f"{path}: alias 'G-1' of 'U2' is already a name of 'U1'"


def test_label_that_is_another_codes_name(tmp_path: Path) -> None:
    text = ONE + '[[category]]\ncode = "U2"\nlabel = "u1"\nrank = 1\n'
    path, message = error_of(tmp_path, text)
    assert message == f"{path}: label 'u1' of 'U2' is already a name of 'U1'"


def test_alias_without_letters(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + 'aliases = ["--"]\n')
    assert message == f"{path}: category 'U1': alias '--' has no letters or digits"


@pytest.mark.parametrize(("rank", "shown"), [('"3"', "'3'"), ("1.5", "1.5"), ("-1", "-1"),
                                             ("true", "True")])
def test_non_integer_rank(tmp_path: Path, rank: str, shown: str) -> None:
    path, message = error_of(tmp_path, ONE.replace("rank = 1", f"rank = {rank}"))
    assert message == f"{path}: category 'U1': rank must be an integer >= 0, not {shown}"


def test_missing_rank(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE.replace("rank = 1\n", ""))
    assert message == f"{path}: category 'U1': missing 'rank'"


def test_missing_label(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE.replace('label = "Unit grade 1"\n', ""))
    assert message == f"{path}: category 'U1': 'label' must be a non-empty string"


def test_aliases_not_strings(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + "aliases = [1]\n")
    assert message == f"{path}: category 'U1': 'aliases' must be a list of strings"


def test_map_to_a_code_the_target_lacks(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + '[map.uk]\nU1 = "D"\n')
    assert message == f"{path}: [map.uk]: 'U1' -> 'D': 'D' is not a code of scheme 'uk'"


def test_map_from_a_code_the_scheme_lacks(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + '[map.uk]\nU7 = "C"\n')
    assert message == f"{path}: [map.uk]: 'U7' is not a code of scheme 'unit'"
    path, message = error_of(tmp_path, ONE + '[map_from.uk]\nD = "U1"\n')
    assert message == f"{path}: [map_from.uk]: 'D' is not a code of scheme 'uk'"


def test_map_to_an_unknown_scheme(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + '[map.nope]\nU1 = "A"\n')
    assert message == (f"{path}: [map.nope]: unknown category scheme 'nope' "
                       "(known: interpol, projectvic, uk, unit)")
    with pytest.raises(HashSetError) as err:
        load_scheme_file(path)
    assert str(err.value) == (f"{path}: [map.nope]: unknown category scheme 'nope' "
                              "(known: interpol, projectvic, uk, unit)")


def test_map_value_not_a_string(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + "[map.uk]\nU1 = 3\n")
    assert message == f"{path}: [map.uk]: the value of 'U1' must be a string, not 3"


def test_map_into_itself(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + '[map.unit]\nU1 = "U1"\n')
    assert message == (f"{path}: [map.unit]: a scheme maps into itself unchanged; "
                       "remove this table")


def test_illegal_code_may_not_map_to_nothing_illegal(tmp_path: Path) -> None:
    path, message = error_of(tmp_path, ONE + '[map.uk]\nU1 = "not-indecent"\n')
    assert message == (f"{path}: [map.uk]: 'U1' (rank 1) may not map to 'not-indecent' "
                       "(rank 0): a code above rank 0 never maps to nothing illegal")
    path, message = error_of(tmp_path, ONE.replace("rank = 1", "rank = 0")
                             + '[map_from.uk]\nA = "U1"\n')
    assert message == (f"{path}: [map_from.uk]: 'A' (rank 4) may not map to 'U1' "
                       "(rank 0): a code above rank 0 never maps to nothing illegal")


def test_conflicting_map_from(tmp_path: Path) -> None:
    two = ONE + '[[category]]\ncode = "U2"\nlabel = "Unit grade 2"\nrank = 1\n'
    first = write(tmp_path, "a.toml", two + '[map.other]\nU1 = "O1"\n')
    write(tmp_path, "b.toml", """\
        name = "other"
        [[category]]
        code = "O1"
        label = "Other 1"
        rank = 1
        [[category]]
        code = "O2"
        label = "Other 2"
        rank = 1
        [map_from.unit]
        U1 = "O2"
        """)
    second = tmp_path / "schemes" / "b.toml"
    with pytest.raises(HashSetError) as err:
        load_schemes(tmp_path)
    assert str(err.value) == (f"{second}: [map_from.unit]: 'U1' -> 'O2' conflicts with "
                              f"'U1' -> 'O1' in {first}")


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "schemes" / "unit.toml").mkdir(parents=True)
    with pytest.raises(HashSetError, match=r"unit\.toml: cannot read: "):
        load_schemes(tmp_path)


# -- the user page ----------------------------------------------------------------------

def doc_section(heading: str) -> str:
    doc = (ROOT / "docs/categories.md").read_text("utf-8")
    return doc.split(heading, 1)[1].split("\n#", 1)[0]


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_docs_list_each_builtin_scheme(schemes: Schemes, name: str) -> None:
    rows = re.findall(r"^\| `([^`]+)` \| (.+?) \| (\d+) \|$",
                      doc_section(f"### `{name}` "), re.M)
    assert [(code, label, int(rank)) for code, label, rank in rows] == BUILTIN[name]


@pytest.mark.parametrize("source", sorted(BUILTIN))
def test_docs_list_each_mapping(schemes: Schemes, source: str) -> None:
    section = doc_section(f"### From `{source}`")
    header = re.search(r"^\| `\w+` \| `(\w+)` \| `(\w+)` \|$", section, re.M)
    assert header is not None
    targets = header.groups()
    rows = re.findall(r"^\| `([^`]+)` \| (`[^`]+`|—) \| (`[^`]+`|—) \|$", section, re.M)
    assert rows[0][0] == source  # the header
    rows = rows[1:]
    assert [row[0] for row in rows] == list(schemes.get(source).codes())
    for code, *cells in rows:
        for target, cell in zip(targets, cells, strict=True):
            assert (None if cell == "—" else cell.strip("`")) == MAPS[source, target][code]


def test_docs_example_scheme_loads(tmp_path: Path) -> None:
    doc = (ROOT / "docs/categories.md").read_text("utf-8")
    example = re.search(r"```toml\n(.*?)```", doc, re.S)
    assert example is not None
    write(tmp_path, "unit.toml", example.group(1))
    schemes = load_schemes(tmp_path)
    assert schemes.map("g1", "unit", "uk").mapped == "uncategorised"
    assert schemes.map("5", "projectvic", "unit").mapped == "U0"
