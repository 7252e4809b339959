//! `/v1/Roles` (and under `/v1/Services/{ChatServiceSid}`): the service's
//! roles, each a `service` or `conversation` role granting Twilio's
//! permission names. An update replaces the whole permission list, as in
//! Twilio; a role someone holds cannot be deleted (409).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use events::command::{CreateRole, DeleteRole, UpdateRole};
use events::{Permission, RoleSid, RoleType};
use projections::RoleRow;
use serde_json::{json, Value};

use crate::app::{AppState, Scope};
use crate::error::ApiError;
use crate::paging::Paging;
use crate::params::{Form, Params, Query};
use crate::render::{enum_str, iso8601, parse_enum};
use crate::rest::path_sid;

/// Twilio's Role resource.
pub fn render(state: &AppState, scope: &Scope, row: &RoleRow) -> Value {
    json!({
        "sid": row.sid.to_string(),
        "account_sid": state.account.read().account_sid,
        "chat_service_sid": row.chat_service_sid.to_string(),
        "friendly_name": row.friendly_name,
        "type": enum_str(&row.role_type),
        "permissions": row.permissions.iter().map(enum_str).collect::<Vec<_>>(),
        "date_created": iso8601(row.date_created),
        "date_updated": iso8601(row.date_updated),
        "url": format!("{}/Roles/{}", scope.prefix, row.sid),
    })
}

/// The repeated `Permission` parameter (required, at least one), each one
/// of Twilio's permission names.
fn permissions(p: &mut Params) -> Result<Vec<Permission>, ApiError> {
    let given = p.all("Permission");
    if given.is_empty() {
        return Err(ApiError::invalid(
            "Permission",
            "is required: repeat it once per permission the role grants",
        ));
    }
    given.iter().map(|s| parse_enum("Permission", s)).collect()
}

fn role_sid(path: &[(String, String)]) -> Result<RoleSid, ApiError> {
    path_sid(path, "Sid")
}

async fn load(state: &AppState, scope: &Scope, sid: RoleSid) -> Result<RoleRow, ApiError> {
    let service = scope.service;
    Ok(state
        .read(move |q| q.role(&service, &sid).cloned())
        .await??)
}

/// `POST …/Roles`: `FriendlyName`, `Type` (`conversation`|`service`),
/// `Permission` (repeated), all required. 201 with the role.
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Form(mut p): Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let friendly_name = p.req("FriendlyName")?;
    let role_type: RoleType = parse_enum("Type", &p.req("Type")?)?;
    let permissions = permissions(&mut p)?;
    p.finish()?;
    let command = CreateRole::new(scope.service, friendly_name, role_type, permissions);
    let sid = state.execute(&headers, command).await?;
    let row = load(&state, &scope, sid).await?;
    Ok((StatusCode::CREATED, Json(render(&state, &scope, &row))))
}

/// `GET …/Roles`: paged, ordered by SID (the service's default roles
/// included).
pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    Query(mut p): Query,
) -> Result<Json<Value>, ApiError> {
    let paging = Paging::take(&mut p)?;
    p.finish()?;
    let request = paging.request();
    let service = scope.service;
    let page = state
        .read(move |q| q.list_roles(&service, &request))
        .await??;
    let url = format!("{}/Roles", scope.prefix);
    Ok(Json(paging.answer("roles", &url, &[], &page, |row| {
        render(&state, &scope, row)
    })))
}

/// `GET …/Roles/{Sid}`.
pub async fn fetch(
    State(state): State<AppState>,
    scope: Scope,
    Path(path): Path<Vec<(String, String)>>,
    Query(p): Query,
) -> Result<Json<Value>, ApiError> {
    p.finish()?;
    let row = load(&state, &scope, role_sid(&path)?).await?;
    Ok(Json(render(&state, &scope, &row)))
}

/// `POST …/Roles/{Sid}`: `Permission` (repeated, required) replaces the
/// role's permissions. 200 with the role.
pub async fn update(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
    Form(mut p): Form,
) -> Result<Json<Value>, ApiError> {
    let permissions = permissions(&mut p)?;
    p.finish()?;
    let sid = role_sid(&path)?;
    state
        .execute(&headers, UpdateRole::new(scope.service, sid, permissions))
        .await?;
    let row = load(&state, &scope, sid).await?;
    Ok(Json(render(&state, &scope, &row)))
}

/// `DELETE …/Roles/{Sid}`: 204; 409 while a user or participant holds it
/// or it is one of the service's defaults.
pub async fn delete(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    Path(path): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let sid = role_sid(&path)?;
    state
        .execute(&headers, DeleteRole::new(scope.service, sid))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
