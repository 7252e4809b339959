//! The step between a caller and the log's writer: a command's pre-event
//! hooks ([`crate::hooks`]) run here, on the caller's side of the writer's
//! queue, and the engine's methods to register hooks and to execute with
//! options live here too.
//!
//! The order for a command that has hooks to run: the idempotency index
//! is read first (a command id already applied skips its hooks, and the
//! writer answers the retry); then the hooks run, on the hook threads
//! while the caller waits; then the (possibly modified) command is queued
//! for the writer with the fingerprint of the command as the caller sent
//! it. A command without hooks to run goes straight to the writer, as it
//! did before hooks existed.

use events::{CommandEnvelope, ConversationRef, Fingerprint};

use super::state::fingerprint;
use super::{refuse_under_read_view, request, typed_output, Core, Engine};
use crate::commands::{CommandError, EngineCommand, StorageFailure};
use crate::hooks::{
    block_on, conversation_ref, ExecuteOptions, HookMetrics, HookScope, Plan, PreEventHookConfig,
};
use crate::log::{indexes, AppendRequest};
use crate::outcome::{CommandOutcome, TypedCommand};
use crate::read_view::read_scoped;

impl Core {
    /// [`Engine::execute_with`] for the serialisable command.
    pub(crate) fn execute_with(
        &self,
        envelope: CommandEnvelope,
        options: ExecuteOptions,
    ) -> Result<CommandOutcome, CommandError> {
        refuse_under_read_view()?;
        let request = match self.hooks.plan(&envelope.command, options) {
            None => request(envelope),
            Some(plan) => block_on(self.run_hooks(plan, envelope))?,
        };
        let appended = self.log.append_blocking_with_records(request);
        self.outcome(appended)
    }

    /// [`Engine::execute_async_with`] for the serialisable command.
    async fn execute_async_with(
        &self,
        envelope: CommandEnvelope,
        options: ExecuteOptions,
    ) -> Result<CommandOutcome, CommandError> {
        refuse_under_read_view()?;
        let request = match self.hooks.plan(&envelope.command, options) {
            None => request(envelope),
            Some(plan) => self.run_hooks(plan, envelope).await?,
        };
        let appended = self.log.append_with_records(request).await;
        self.outcome(appended)
    }

    /// Runs `plan`'s hooks on `envelope` and returns the request for the
    /// writer: the command as the hooks left it, with the fingerprint of
    /// the command as its caller sent it when a hook modified it.
    ///
    /// Errors: the hooks' [`crate::HookRefusal`]; [`StorageFailure::Read`]
    /// when the idempotency index cannot be read; an unencodable command.
    async fn run_hooks(
        &self,
        plan: Plan,
        envelope: CommandEnvelope,
    ) -> Result<AppendRequest<EngineCommand>, CommandError> {
        let scope = envelope.command.idempotency_scope();
        let applied = indexes::command_entry(self.log.db(), scope.as_ref(), &envelope.command_id)
            .map_err(|e| StorageFailure::Read(e.to_string()))?;
        if applied.is_some() {
            self.hooks.note_retry();
            return Ok(request(envelope));
        }
        // A SID is taken as given (its existence is decided later, by the
        // writer); only a unique name needs the read models, whose lock
        // the writer holds for a whole batch.
        let conversation_sid = match (scope, conversation_ref(&envelope.command)) {
            (_, Some(ConversationRef::Sid(sid))) => Some(*sid),
            (Some(service), Some(name @ ConversationRef::UniqueName(_))) => {
                read_scoped(&self.read, |rm| {
                    rm.service(&service)
                        .and_then(|s| s.resolve(name))
                        .map(|c| c.row().sid)
                })
            }
            _ => None,
        };
        let Some(modified) = self.hooks.run(plan, &envelope, conversation_sid).await? else {
            return Ok(request(envelope));
        };
        let requested: Fingerprint =
            fingerprint(envelope.acting_identity.as_deref(), &envelope.command)
                .map_err(unfingerprintable)?;
        let mut request = request(CommandEnvelope {
            command: modified,
            ..envelope
        });
        request.command.requested_fingerprint = Some(requested);
        Ok(request)
    }
}

/// The refusal of a command that cannot be encoded for its idempotency
/// fingerprint (never for this crate's commands; typed all the same).
pub(super) fn unfingerprintable(e: impl std::fmt::Display) -> CommandError {
    CommandError::Invalid {
        field: "command",
        reason: format!("cannot be encoded for its idempotency fingerprint: {e}"),
    }
}

impl Engine {
    /// [`Engine::execute`] with `options`: with
    /// [`ExecuteOptions::without_pre_event_hooks`] the command runs no
    /// pre-event hook (Twilio's `X-Twilio-Webhook-Enabled`).
    ///
    /// Errors: as [`Engine::execute`], plus
    /// [`CommandError::PreEventHook`] when a hook rejected the command,
    /// modified a field it may not, or (fail-closed) timed out or failed;
    /// nothing is written then. [`StorageFailure::Read`] when the
    /// idempotency index, read before hooks run, cannot be read.
    pub fn execute_with<C: TypedCommand>(
        &self,
        envelope: CommandEnvelope<C>,
        options: ExecuteOptions,
    ) -> Result<C::Output, CommandError> {
        typed_output::<C>(self.core.execute_with(envelope.into_command(), options)?)
    }

    /// The async form of [`Engine::execute_with`]: resolves when durable.
    /// Hooks run on the engine's hook threads while this awaits, so the
    /// executor's thread is never blocked by a hook, and no particular
    /// async runtime is needed.
    ///
    /// Errors: as [`Engine::execute_with`].
    pub async fn execute_async_with<C: TypedCommand>(
        &self,
        envelope: CommandEnvelope<C>,
        options: ExecuteOptions,
    ) -> Result<C::Output, CommandError> {
        typed_output::<C>(
            self.core
                .execute_async_with(envelope.into_command(), options)
                .await?,
        )
    }

    /// Registers `config`'s pre-event hook for `scope` (one service, or
    /// every service), replacing the hook that scope had. Commands
    /// executed from now on run it (see [`crate::hooks`] for the contract:
    /// filters, order, deadline, failure policy). Hooks live in memory:
    /// a host registers them again after each open.
    pub fn set_pre_event_hook(&self, scope: HookScope, config: PreEventHookConfig) {
        self.core.hooks.set(scope, config);
    }

    /// Removes `scope`'s pre-event hook; returns whether it had one. A
    /// call already running finishes.
    pub fn remove_pre_event_hook(&self, scope: HookScope) -> bool {
        self.core.hooks.remove(scope)
    }

    /// The pre-event hook counters (calls, rejections, modifications,
    /// timeouts, failures, retries that skipped their hooks). Lock-free.
    pub fn hook_metrics(&self) -> HookMetrics {
        self.core.hooks.metrics()
    }
}
