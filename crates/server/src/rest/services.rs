//! `/v1/Services`: Conversation Services, the tenant partitions.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use events::command::{CreateService, DeleteService};
use events::ServiceSid;
use projections::ServiceRow;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::ApiError;
use crate::paging::Paging;
use crate::params::{Form, Query};
use crate::render::iso8601;

/// Twilio's Service resource.
pub fn render(state: &AppState, row: &ServiceRow) -> Value {
    let url = format!("{}/v1/Services/{}", state.base_url, row.sid);
    json!({
        "account_sid": state.account.read().account_sid,
        "sid": row.sid.to_string(),
        "friendly_name": row.friendly_name,
        "date_created": iso8601(row.date_created),
        "date_updated": iso8601(row.date_updated),
        "url": url,
        "links": {
            "conversations": format!("{url}/Conversations"),
            "users": format!("{url}/Users"),
            "roles": format!("{url}/Roles"),
            "bindings": format!("{url}/Bindings"),
            "configuration": format!("{url}/Configuration"),
            "participant_conversations": format!("{url}/ParticipantConversations"),
        },
    })
}

fn service_sid(raw: &str) -> Result<ServiceSid, ApiError> {
    raw.parse()
        .map_err(|e| ApiError::invalid("ChatServiceSid", e))
}

async fn row(state: &AppState, sid: ServiceSid) -> Result<ServiceRow, ApiError> {
    Ok(state
        .read(move |q| q.get_service(&sid).map(|s| s.row().clone()))
        .await??)
}

/// `POST /v1/Services`: `FriendlyName` (required). 201 with the service.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = p.req("FriendlyName")?;
    p.finish()?;
    let sid = state.execute(&headers, CreateService::new(name)).await?;
    let row = row(&state, sid).await?;
    Ok((StatusCode::CREATED, Json(render(&state, &row))))
}

/// `GET /v1/Services`: paged, ordered by SID.
pub async fn list(
    State(state): State<AppState>,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let request = paging.request();
    let page = state.read(move |q| q.list_services(&request)).await??;
    let url = format!("{}/v1/Services", state.base_url);
    Ok(Json(paging.answer("services", &url, &[], &page, |r| {
        render(&state, r)
    })))
}

/// `GET /v1/Services/{ChatServiceSid}`.
pub async fn fetch(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let row = row(&state, service_sid(&sid)?).await?;
    Ok(Json(render(&state, &row)))
}

/// `DELETE /v1/Services/{ChatServiceSid}`: the service and everything in
/// it. 204. The account's default service cannot be deleted (400): the
/// paths without `/Services/…` would have nothing to address.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(sid): Path<String>,
) -> Result<StatusCode, ApiError> {
    let sid = service_sid(&sid)?;
    if sid == state.account.read().default_chat_service_sid {
        return Err(ApiError::invalid(
            "ChatServiceSid",
            "the account's default service cannot be deleted; make another service the default first (POST /v1/Configuration)",
        ));
    }
    state.execute(&headers, DeleteService::new(sid)).await?;
    Ok(StatusCode::NO_CONTENT)
}
