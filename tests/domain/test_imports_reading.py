"""Reading uploads safely: formats by content, encodings, sheets, and every refusal by name."""

from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook as XlsxWorkbook

from domain.errors import Invalid
from domain.imports import cells, columns
from domain.imports.reading import OLE_MAGIC, Format, Limits, Workbook

LIMITS = Limits(max_bytes=5_000_000, max_unpacked_bytes=20_000_000, max_rows=1_000)


def xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    book = XlsxWorkbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def all_rows(book: Workbook, sheet: str | None = None) -> list[list[object]]:
    return [cells for _, cells in book.rows(sheet)]


def test_xlsx_sheets_are_listed_and_one_is_chosen() -> None:
    data = xlsx({"说明": [["请看第二页"]], "客户": [["客户名称", "手机"], ["青禾", 13800138000]]})
    book = Workbook(data, LIMITS)
    assert book.format is Format.xlsx
    assert book.sheet_names == ["说明", "客户"]
    assert all_rows(book, "客户") == [["客户名称", "手机"], ["青禾", 13800138000]]
    with pytest.raises(Invalid, match="no sheet named 订单") as refused:
        book.sheet("订单")
    assert refused.value.field == "sheet"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_utf8_with_or_without_bom_and_in_gbk(encoding: str) -> None:
    text = "客户名称,手机\r\n杭州青禾食品有限公司,13800138000\r\n"
    book = Workbook(text.encode(encoding), LIMITS)
    assert book.format is Format.csv
    assert all_rows(book) == [["客户名称", "手机"], ["杭州青禾食品有限公司", "13800138000"]]


def test_csv_with_semicolons_or_tabs_is_split_right() -> None:
    book = Workbook("客户名称;手机\n青禾;13800138000\n".encode(), LIMITS)
    assert all_rows(book)[1] == ["青禾", "13800138000"]


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"%PDF-1.7 ...", "not a spreadsheet: this is a PDF"),
        (b"\x89PNG\r\n\x1a\n....", "not a spreadsheet: this is a PNG"),
        (b"abc\x00\x01\x02def", "not a spreadsheet"),
        (OLE_MAGIC + b"\x00" * 100 + "EncryptedPackage".encode("utf-16-le"), "password-protected"),
        (OLE_MAGIC + b"\x00" * 600, "damaged"),
        (b"PK\x03\x04 truncated", "damaged"),
        (_zip({"readme.txt": b"hello"}), "not an Excel workbook"),
        (_zip({"content.xml": b"<x/>", "mimetype": b"x"}), "OpenDocument"),
        (_zip({"xl/workbook.xml": b"<x/>", "xl/big.xml": b"0" * 30_000_000}), "expand beyond"),
    ],
)
def test_what_is_not_a_readable_spreadsheet_is_refused_by_name(data: bytes, message: str) -> None:
    with pytest.raises(Invalid, match=message) as refused:
        Workbook(data, LIMITS)
    assert refused.value.field == "file"


def test_corrupt_xlsx_is_refused() -> None:
    data = bytearray(xlsx({"客户": [["客户名称"], ["青禾"]]}))
    broken = _zip({"xl/workbook.xml": b"<not really>", "[Content_Types].xml": b"<"})
    with pytest.raises(Invalid, match="damaged"):
        Workbook(broken, LIMITS)
    data[len(data) // 2 : len(data) // 2 + 50] = b"\xff" * 50
    with pytest.raises(Invalid, match="damaged"):
        Workbook(bytes(data), LIMITS)


def test_size_and_row_limits() -> None:
    with pytest.raises(Invalid, match="larger than"):
        Workbook(b"a,b\n" * 100, Limits(max_bytes=100, max_unpacked_bytes=1000, max_rows=10))
    small = Limits(max_bytes=5_000_000, max_unpacked_bytes=20_000_000, max_rows=3)
    book = Workbook(xlsx({"s": [["客户名称"]] + [[f"c{i}"] for i in range(5)]}), small)
    with pytest.raises(Invalid, match="at most 3"):
        all_rows(book)
    book = Workbook(("客户名称\n" + "x\n" * 5).encode(), small)
    with pytest.raises(Invalid, match="more than 3"):
        all_rows(book)


def test_headers_map_by_label_key_and_synonyms_in_both_languages() -> None:
    known = columns.columns_of(columns.Entity.customers, [])
    headers = ["公司名称", "手机号", "E-mail", "统一社会信用代码", "归属销售", "无关列", "Mobile"]
    assert columns.suggest(headers, known) == {
        "公司名称": "name",
        "手机号": "phone",
        "E-mail": "email",
        "统一社会信用代码": "credit_code",
        "归属销售": "owner",
    }


def test_a_mapping_is_checked_against_headers_and_fields() -> None:
    known = columns.columns_of(columns.Entity.customers, [])
    headers = ["名称", "电话"]
    with pytest.raises(Invalid, match="no column"):
        columns.check_mapping({"地址": "name"}, headers, known)
    with pytest.raises(Invalid, match="not a field"):
        columns.check_mapping({"名称": "name", "电话": "fax"}, headers, known)
    with pytest.raises(Invalid, match="already taken"):
        columns.check_mapping({"名称": "name", "电话": "name"}, headers, known)
    with pytest.raises(Invalid, match="required field name"):
        columns.check_mapping({"电话": "phone"}, headers, known)


@pytest.mark.parametrize(
    "raw",
    ["2024-01-05", "2024/1/5", "2024.1.5", "2024年1月5日", "20240105", "2024-01-05 10:30",
     45296.0, "２０２４年１月５日"],
)
def test_dates_in_the_usual_chinese_and_iso_forms(raw: object) -> None:
    assert cells.to_date(raw, field="birthday") == "2024-01-05"  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["5/1/2024", "2024-02-30", "明天"])
def test_unreadable_dates_are_refused(raw: str) -> None:
    with pytest.raises(Invalid):
        cells.to_date(raw, field="birthday")


def test_cells_read_as_the_user_sees_them() -> None:
    assert cells.text(13800138000.0) == "13800138000"
    assert cells.text(12.5) == "12.5"
    assert cells.choice("kind", "个人") == "person"
    assert cells.choice("gender", "女") == "female"
    assert cells.choice("stage", "Customer") == "customer"
    assert cells.tags("重点，华东、新客户") == ["重点", "华东", "新客户"]
