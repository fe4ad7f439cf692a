"""Import routes: upload, check (dry run), confirm, cancel, progress, problems, error report.

The upload has its own body limit (settings.import_max_bytes); everything else is JSON.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentActor, RecordId, SessionDep, SettingsDep, TemporalDep
from domain.db import transaction
from domain.errors import Conflict
from domain.imports import report, service
from domain.imports.columns import Entity
from domain.imports.models import Outcome, Status
from domain.imports.schemas import (
    Decision,
    ImportOptions,
    ImportRead,
    ImportStart,
    MappingRead,
    MappingSave,
    ProblemRead,
    RecordRead,
)
from domain.settings import Settings
from workflows.imports import ImportWorkflow

router = APIRouter(prefix="/api/imports", tags=["imports"])

UPLOAD_PATH = "/api/imports"
MULTIPART_SLACK = 64_000
"""Room for the multipart envelope around a file of the largest allowed size."""
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _handle(temporal: TemporalDep, settings: Settings, import_id: int) -> WorkflowHandle:
    return temporal.get_workflow_handle(settings.workflow_id("import", import_id))


@router.post("", status_code=201)
async def upload(
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description=".xlsx, .xls or .csv (UTF-8 or GBK)")],
    entity: Annotated[Entity, Form()],
    sheet: Annotated[str | None, Form(max_length=100)] = None,
    mapping_name: Annotated[str | None, Form(max_length=100)] = None,
) -> ImportRead:
    """Store the file and propose a column mapping; nothing is checked or written yet."""
    data = await file.read(settings.import_max_bytes + 1)
    imp = await service.upload(
        session, actor=actor, settings=settings, entity=entity,
        filename=file.filename or "upload", data=data, sheet=sheet, mapping_name=mapping_name,
    )
    return ImportRead.model_validate(imp)


@router.post("/{import_id}/check", status_code=202)
async def check(
    import_id: RecordId,
    options: ImportOptions,
    actor: CurrentActor,
    request: Request,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> ImportRead:
    """The dry run with these options; with `confirm`, the valid rows are written right after."""
    async with transaction(request.app.state.sessions) as session:
        imp = await service.get(session, actor=actor, import_id=import_id)
        first = imp.status == Status.uploaded.value
        imp = await service.configure(
            session, actor=actor, settings=settings, import_id=import_id, options=options
        )
    if first:
        await temporal.start_workflow(
            ImportWorkflow.run,
            ImportStart(import_id=import_id, confirm=options.confirm,
                        leads=imp.entity == Entity.leads.value),
            id=settings.workflow_id("import", import_id),
            task_queue=settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    else:
        await _handle(temporal, settings, import_id).execute_update(
            ImportWorkflow.decide, Decision(recheck=True)
        )
        if options.confirm:
            raise Conflict("a re-check waits for its own confirmation: confirm after it",
                           field="confirm")
    return ImportRead.model_validate(imp)


@router.post("/{import_id}/confirm", status_code=202)
async def confirm(
    import_id: RecordId, actor: CurrentActor, request: Request, settings: SettingsDep,
    temporal: TemporalDep,
) -> ImportRead:
    """Write the checked rows; the import reads as importing from this answer on."""
    async with transaction(request.app.state.sessions) as session:
        imp = await service.get(session, actor=actor, import_id=import_id)
    if imp.status != Status.checked.value:
        raise Conflict(f"the import is {imp.status}; only a checked import can be confirmed",
                       field="status")
    await _handle(temporal, settings, import_id).execute_update(
        ImportWorkflow.decide, Decision(confirm=True)
    )
    async with transaction(request.app.state.sessions) as session:
        await service.mark_confirmed(session, import_id=import_id)
        return ImportRead.model_validate(
            await service.get(session, actor=actor, import_id=import_id)
        )


@router.post("/{import_id}/cancel", status_code=202)
async def cancel(
    import_id: RecordId, actor: CurrentActor, request: Request, settings: SettingsDep,
    temporal: TemporalDep,
) -> ImportRead:
    """Stop between two chunks; the records written so far stay and are listed in /records."""
    async with transaction(request.app.state.sessions) as session:
        imp = await service.get(session, actor=actor, import_id=import_id)
    if Status(imp.status) in {Status.done, Status.failed, Status.cancelled}:
        raise Conflict(f"the import is already {imp.status}", field="status")
    if imp.status == Status.uploaded.value:
        await service.finish(request.app.state.sessions, settings, import_id=import_id,
                             status=Status.cancelled, error="cancelled before the check")
    else:
        try:
            await _handle(temporal, settings, import_id).cancel()
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
    async with transaction(request.app.state.sessions) as session:
        return ImportRead.model_validate(
            await service.get(session, actor=actor, import_id=import_id)
        )


@router.get("/mappings/{entity}")
async def list_mappings(
    entity: Entity, actor: CurrentActor, session: SessionDep
) -> list[MappingRead]:
    rows = await service.list_mappings(session, actor=actor, entity=entity)
    return [MappingRead.model_validate(r) for r in rows]


@router.put("/mappings/{entity}")
async def save_mapping(
    entity: Entity, data: MappingSave, actor: CurrentActor, session: SessionDep
) -> MappingRead:
    """Save a column mapping under a name, offered for the next upload of this entity."""
    row = await service.save_mapping(
        session, actor=actor, entity=entity, name=data.name, mapping=data.mapping
    )
    return MappingRead.model_validate(row)


@router.delete("/mappings/{entity}/{name}", status_code=204)
async def delete_mapping(
    entity: Entity, name: Annotated[str, Path(min_length=1, max_length=100)],
    actor: CurrentActor, session: SessionDep,
) -> Response:
    await service.delete_mapping(session, actor=actor, entity=entity, name=name)
    return Response(status_code=204)


@router.get("/templates/{entity}.xlsx")
async def download_template(
    entity: Entity, actor: CurrentActor, session: SessionDep,
    lang: Literal["zh-CN", "en"] = "zh-CN",
) -> Response:
    """A template to fill in: headers in `lang`, custom fields, an example row, drop-downs."""
    body = await service.template_file(session, actor=actor, entity=entity, lang=lang)
    name = f"{entity.value}-template-{lang}.xlsx"
    return Response(body, media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/{import_id}")
async def get_import(import_id: RecordId, actor: CurrentActor, session: SessionDep) -> ImportRead:
    """Status and progress: rows checked or written of total_rows, errors so far."""
    return ImportRead.model_validate(await service.get(session, actor=actor, import_id=import_id))


@router.get("/{import_id}/problems")
async def list_problems(
    import_id: RecordId, actor: CurrentActor, session: SessionDep,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ProblemRead]:
    rows = await service.problems(session, actor=actor, import_id=import_id, after_id=after_id,
                                  limit=limit)
    return [ProblemRead.model_validate(r) for r in rows]


@router.get("/{import_id}/records")
async def list_records(
    import_id: RecordId, actor: CurrentActor, session: SessionDep,
    outcome: Outcome | None = None,
    after_row: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[RecordRead]:
    """What each written row did, and to which record."""
    rows = await service.records(session, actor=actor, import_id=import_id, outcome=outcome,
                                 after_row=after_row, limit=limit)
    return [RecordRead.model_validate(r) for r in rows]


@router.get("/{import_id}/report.xlsx")
async def error_report(
    import_id: RecordId, actor: CurrentActor, session: SessionDep, settings: SettingsDep
) -> Response:
    """The invalid rows as uploaded, with a column of problems: fix them and upload again."""
    imp = await service.get(session, actor=actor, import_id=import_id)
    workbook = service.open_file(settings, imp)
    try:
        body = await report.build(session, imp, workbook)
    finally:
        workbook.close()
    name = f"import-{import_id}-errors.xlsx"
    return Response(body, media_type=XLSX,
                     headers={"Content-Disposition": f'attachment; filename="{name}"'})
