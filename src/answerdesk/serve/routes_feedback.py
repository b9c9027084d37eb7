"""``POST /v1/feedback``: a thumbs up/down, a CSAT score and/or a comment on an earlier answer."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request

from answerdesk.serve.app import services_of
from answerdesk.serve.auth import ASK
from answerdesk.serve.problems import log
from answerdesk.serve.schemas import FeedbackOut, FeedbackRequest
from answerdesk.types import Principal

router = APIRouter(tags=["feedback"])


@router.post("/v1/feedback", response_model=FeedbackOut, status_code=201, summary="Rate an answer")
async def add_feedback(body: FeedbackRequest, request: Request, principal: Principal = Depends(ASK)) -> dict[str, Any]:
    services = services_of(request)
    feedback = await anyio.to_thread.run_sync(
        lambda: services.state.add_feedback(
            request_id=body.request_id,
            tenant=principal.tenant,
            subject=principal.subject,
            rating=body.rating,
            csat=body.csat,
            comment=body.comment,
        )
    )
    try:
        await services.hooks.feedback(principal, feedback)
    except Exception:  # the rating is stored; a recorder failing must not make the caller retry it
        log.exception("a request hook failed recording feedback on %s", feedback.request_id)
    return {
        "request_id": feedback.request_id,
        "rating": feedback.rating,
        "csat": feedback.csat,
        "comment": feedback.comment,
        "created_at": feedback.created_at,
    }
