"""An embedded item's context in words (embedded.py): the line the review app, the reports
and their readers see beside the item's path."""

from __future__ import annotations

from safeguard.embedded import MAX_LINE, container_name, context_line


def test_the_container_is_the_last_link_before_the_item() -> None:
    assert container_name("Users/x/mail/in.eml!2-photo.jpg") == "in.eml"
    assert container_name("disk.vmdk!p1/a.zip!b/report.pdf!page-0001/obj-0007.jpg") == \
        "report.pdf"
    assert container_name("top.jpg") == ""


def test_an_attachment_names_its_message() -> None:
    context = {"relation": "attachment of e-mail", "from": "alice@example.org",
               "to": ["bob@example.org", "carol@example.org"], "date": "2024-03-01T10:00:00Z",
               "subject": "Holiday pictures", "filename": "beach.jpg"}
    assert context_line("mail/in.eml!1-beach.jpg", context) == (
        "attachment of e-mail in.eml: subject “Holiday pictures”, from alice@example.org, "
        "to bob@example.org; carol@example.org, sent 2024-03-01T10:00:00Z")


def test_a_thumbnail_names_its_original_and_whether_it_is_gone() -> None:
    context = {"relation": "thumbnail in cache", "cache_id": "00ff00ff00ff00ff", "size": "256",
               "original_path": "C:\\Users\\alex\\Pictures\\x.jpg", "original_present": False}
    assert context_line("p2/Users/alex/AppData/thumbcache_256.db!00ff00ff00ff00ff.jpg",
                        context) == (
        "thumbnail in cache thumbcache_256.db: cache id 00ff00ff00ff00ff, size 256, of "
        "C:\\Users\\alex\\Pictures\\x.jpg, which is no longer on the disk")


def test_a_database_cell_names_table_column_and_row() -> None:
    context = {"relation": "cell of database", "table": "messages", "column": "thumb",
               "rowid": 0}
    assert context_line("chat.db!messages/thumb/0.jpg", context) == (
        "cell of database chat.db: table messages, column thumb, row 0")


def test_other_relations_show_their_first_known_keys() -> None:
    context = {"relation": "embedded in document", "page": 3, "object": 12,
               "filter": "/DCTDecode"}
    assert context_line("r.pdf!page-0003/obj-0012.jpg", context) == (
        "embedded in document r.pdf: page 3, object 12")


def test_no_context_no_line_and_hostile_text_is_escaped_and_bounded() -> None:
    assert context_line("a.zip!b.jpg", None) is None
    hostile = {"relation": "attachment of e-mail", "subject": "fake\x1b[2Jline\u202e" + "x" * 400}
    line = context_line("m.eml!1.jpg", hostile)
    assert line is not None and len(line) == MAX_LINE and line.endswith("…")
    assert "\\x1b[2Jline\\u202e" in line and "\x1b" not in line
