"""Import templates: an .xlsx per entity to fill in, so a first import does not start from a
blank sheet.

The header names every column in the chosen language (an import reads either language, and
the " *" marking a required column folds away), the entity's custom fields come after the
built-in columns, a first row shows a valid example, and choice columns carry a drop-down list
(kept on a hidden sheet, so options with commas and long lists work). The example row imports
as it is once the example customer exists: the templates are tested that way.
"""

from __future__ import annotations

import io
from typing import Literal

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation

from domain.custom_field import CustomField, FieldType
from domain.imports import cells
from domain.imports.columns import CUSTOM_PREFIX, Column, Entity, columns_of

Lang = Literal["zh-CN", "en"]
REQUIRED_MARK = " *"
VALIDATED_ROWS = 5_000
"""Rows under the header that get the drop-down lists."""
SHEET = {"zh-CN": "导入数据", "en": "Data"}
LISTS = {"zh-CN": "选项", "en": "Options"}
PEOPLE = ("owner", "author")
"""Columns naming a user: the example names whoever downloads the template."""
CUSTOM_EXAMPLES: dict[FieldType, str] = {
    FieldType.text: "示例",
    FieldType.long_text: "示例",
    FieldType.number: "1",
    FieldType.money: "100.00",
    FieldType.date: "2024-03-05",
    FieldType.datetime: "2024-03-05T10:30:00+08:00",
    FieldType.boolean: "true",
    FieldType.email: "info@example.com",
    FieldType.phone: "13800138000",
    FieldType.url: "https://example.com",
}


def _options(entity: Entity, column: Column, lang: Lang) -> list[str]:
    """The drop-down values: Chinese labels in a Chinese template, the values in English."""
    if lang == "zh-CN" or column.key.startswith(CUSTOM_PREFIX):
        return list(column.options)
    labels = cells.choices_of(entity.value).get(column.key, {})
    return [labels.get(option, option) for option in column.options]


def _example(
    entity: Entity, column: Column, lang: Lang, definition: CustomField | None,
    user: tuple[int, str],
) -> str:
    if column.key in PEOPLE:
        return user[1]
    if definition is not None:
        type_ = FieldType(definition.type)
        if definition.options:
            return definition.options[0]
        if type_ is FieldType.user:
            return str(user[0])
        return CUSTOM_EXAMPLES.get(type_, "")
    if column.example and column.options and lang == "en":
        labels = cells.choices_of(entity.value).get(column.key, {})
        return labels.get(column.example, column.example)
    return column.example


def build(
    entity: Entity, custom: list[CustomField], *, lang: Lang, user: tuple[int, str]
) -> bytes:
    """The template of `entity` with its active custom fields; `user` is (id, login) of the
    admin downloading it, named where the example needs a person."""
    columns = columns_of(entity, custom)
    by_key = {f"{CUSTOM_PREFIX}{d.key}": d for d in custom}
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET[lang]
    lists = book.create_sheet(LISTS[lang])
    lists.sheet_state = "hidden"
    bold, required = Font(bold=True), Font(bold=True, color="C00000")
    list_column = 0
    for index, column in enumerate(columns, start=1):
        label = column.zh if lang == "zh-CN" else column.en
        header = sheet.cell(row=1, column=index, value=label + (REQUIRED_MARK if column.required
                                                                else ""))
        header.font = required if column.required else bold
        example = _example(entity, column, lang, by_key.get(column.key), user)
        if example:
            sheet.cell(row=2, column=index, value=example).data_type = "s"
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = max(12, len(label) * 2 + 4)
        options = _options(entity, column, lang)
        definition = by_key.get(column.key)
        if not options or (definition and definition.type == FieldType.multi_select.value):
            continue  # a drop-down picks one value; a multi-select cell lists several
        list_column += 1
        list_letter = get_column_letter(list_column)
        for row, option in enumerate(options, start=1):
            lists.cell(row=row, column=list_column, value=option).data_type = "s"
        source = f"{quote_sheetname(lists.title)}!${list_letter}$1:${list_letter}${len(options)}"
        validation = DataValidation(type="list", formula1=source, allow_blank=True)
        validation.error = ", ".join(options)[:255]
        validation.showErrorMessage = True
        validation.add(f"{letter}2:{letter}{VALIDATED_ROWS + 1}")
        sheet.add_data_validation(validation)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
