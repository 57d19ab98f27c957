package exchange

import "github.com/authex/authex/providers"

// The registry: every string authex shows a client as a `reason`, writes
// as an audit event type, or records as a session's revocation reason is
// a constant in this file. Reasons are part of the HTTP contract (append
// only, never rename) and each is listed in docs/api.md; Reasons holds
// them against it (TestReasonsDocumented).
//
// Names: Reason + CamelCase of the reason, Event + CamelCase of the audit
// type, RevokeReason + CamelCase of the revocation reason; older names
// that read otherwise stay as they are.

// Provider reasons that exchange also answers itself (a refresh or access
// token of ours that is expired, tampered with or badly signed). They are
// the providers' constants, so the strings are spelled once.
const (
	ReasonExpired   = providers.ReasonExpired
	ReasonMalformed = providers.ReasonMalformed
	ReasonSignature = providers.ReasonSignature
)

// Sign-in, sessions and refresh.
const (
	ReasonRevoked          = "revoked"
	ReasonReused           = "reused"
	ReasonUserDisabled     = "user_disabled"
	ReasonSignupDisabled   = "signup_disabled"
	ReasonStore            = "store_unavailable"
	ReasonProviderMissing  = "unknown_provider"
	ReasonLastIdentity     = "last_identity"
	ReasonLinkWrongAccount = "link_token_wrong_account"
	ReasonIdentityInUse    = "identity_in_use"
	ReasonNotFound         = "not_found"
	// ReasonReplayed: a provider credential (id_token) already used here.
	ReasonReplayed            = "replayed"
	ReasonAccountExists       = "account_exists"
	ReasonProviderUnavailable = "provider_unavailable"
	// ReasonBusy: every password hashing slot stayed taken for the whole wait.
	ReasonBusy = "busy"
)

// The request itself is wrong (invalid_request), found by exchange or by
// web before the request reaches exchange.
const (
	ReasonMissingProvider        = "missing_provider"
	ReasonMissingCredential      = "missing_credential"
	ReasonConflictingCredentials = "conflicting_credentials"
	ReasonInvalidScope           = "invalid_scope"
	ReasonMissingRefreshToken    = "missing_refresh_token"
	ReasonMissingToken           = "missing_token" // no Bearer token (ours or an admin token)
	ReasonMalformedJSON          = "malformed_json"
	ReasonContentType            = "content_type"
	ReasonBodyTooLarge           = "body_too_large"
)

// Clients and the OAuth endpoints (/oauth/token, /oauth/revoke,
// /oauth/introspect).
const (
	ReasonMissingClient = "missing_client"
	// ReasonUnknownClient is no longer answered: an unknown client id gets
	// missing_secret or invalid_secret, as a known one would, so client
	// ids cannot be enumerated. Kept so the name stays reserved; not in
	// Reasons.
	ReasonUnknownClient                 = "unknown_client"
	ReasonMissingSecret                 = "missing_secret"
	ReasonInvalidSecret                 = "invalid_secret"
	ReasonUnexpectedSecret              = "unexpected_secret"
	ReasonProviderNotAllowed            = "provider_not_allowed"
	ReasonClientMismatch                = "client_mismatch"
	ReasonPublicClient                  = "public_client"
	ReasonNoClientsConfigured           = "no_clients_configured"
	ReasonMultipleClientAuth            = "multiple_client_auth"
	ReasonMalformedClientAuth           = "malformed_client_auth"
	ReasonMalformedBody                 = "malformed_body"
	ReasonDuplicateParameter            = "duplicate_parameter"
	ReasonMissingGrantType              = "missing_grant_type"
	ReasonUnsupportedGrantType          = "unsupported_grant_type"
	ReasonActorTokenUnsupported         = "actor_token_unsupported"
	ReasonUnsupportedRequestedTokenType = "unsupported_requested_token_type"
	ReasonMissingSubjectToken           = "missing_subject_token"
	ReasonMissingSubjectTokenType       = "missing_subject_token_type"
	ReasonUnsupportedTokenType          = "unsupported_token_type"
	ReasonMissingSubjectIssuer          = "missing_subject_issuer"
)

// Password accounts.
const (
	ReasonInvalidCredentials     = "invalid_credentials"
	ReasonRateLimited            = "rate_limited"
	ReasonMissingEmail           = "missing_email"
	ReasonMissingPassword        = "missing_password"
	ReasonInvalidEmail           = "invalid_email"
	ReasonEmailTaken             = "email_taken"
	ReasonNoEmail                = "no_email"
	ReasonPasswordTooShort       = "password_too_short"
	ReasonPasswordTooLong        = "password_too_long"
	ReasonPasswordTooCommon      = "password_too_common"
	ReasonPasswordMatchesEmail   = "password_matches_email"
	ReasonPasswordsOff           = "passwords_disabled"
	ReasonMissingCurrentPassword = "missing_current_password"
	ReasonReauthRequired         = "reauthentication_required"
	ReasonPasswordChanged        = "password_changed"
)

// The admin API (/admin/v1).
const (
	ReasonAdminToken    = "admin_token"    // not one of admin.tokens
	ReasonAdminDisabled = "admin_disabled" // no admin token configured
	ReasonInvalidLimit  = "invalid_limit"
	ReasonInvalidTime   = "invalid_time"
	ReasonInvalidRange  = "invalid_range"
	ReasonInvalidRoles  = "invalid_roles"
	ReasonMissingRoles  = "missing_roles"
	// ReasonKeysFromFiles: signing keys come from PEM files, no rotation
	// or revocation through authex.
	ReasonKeysFromFiles = "keys_from_files"
	// ReasonSecretInUse: the refresh secret that signs now cannot be retired.
	ReasonSecretInUse       = "secret_in_use"
	ReasonBackupUnsupported = "backup_unsupported"
)

// The compat profiles only (docs/compat.md), in their framework's body.
const (
	ReasonMalformedForm    = "malformed_form"
	ReasonMissingField     = "missing_field"
	ReasonPasswordMismatch = "password_mismatch"
)

// Usernames (usernames.go).
const (
	ReasonInvalidUsername        = "invalid_username"        // not 3-30 of [A-Za-z0-9._-], starting with a letter or digit
	ReasonUsernameIsEmail        = "username_is_email"       // contains '@': it could be someone's email
	ReasonUsernameTaken          = "username_taken"          // another account has it (ASCII case-insensitive)
	ReasonConflictingIdentifiers = "conflicting_identifiers" // login names more than one of email, username, identifier
)

// Email verification and password reset (exchange/email.go).
const (
	ReasonEmailNotConfigured   = "email_not_configured"
	ReasonInvalidEmailToken    = "invalid_email_token"
	ReasonEmailAlreadyVerified = "email_already_verified"
	ReasonEmailQueueFull       = "email_queue_full"
)

// Security signals (POST /v1/signals): the RFC 8935 error codes, answered
// as {"err": code, "description": ...}.
const (
	ReasonSETInvalidRequest  = "invalid_request"
	ReasonSETInvalidKey      = "invalid_key"
	ReasonSETInvalidIssuer   = "invalid_issuer"
	ReasonSETInvalidAudience = "invalid_audience"
)

// The claims hook (hooks.claims).
const (
	// ReasonClaimsHookFailed: the hook failed (error, timeout, bad answer
	// or a reserved claim) and on_failure is deny.
	ReasonClaimsHookFailed = "claims_hook_failed"
)

// Anonymous users (POST /v1/anonymous).
const (
	ReasonAnonymousDisabled = "anonymous_disabled"
)

// reasons are this package's client-visible reasons, in the order above.
var reasons = []string{
	ReasonExpired, ReasonMalformed, ReasonSignature,

	ReasonRevoked, ReasonReused, ReasonUserDisabled, ReasonSignupDisabled, ReasonStore,
	ReasonProviderMissing, ReasonLastIdentity, ReasonLinkWrongAccount, ReasonIdentityInUse,
	ReasonNotFound, ReasonReplayed, ReasonAccountExists, ReasonProviderUnavailable, ReasonBusy,

	ReasonMissingProvider, ReasonMissingCredential, ReasonConflictingCredentials, ReasonInvalidScope,
	ReasonMissingRefreshToken, ReasonMissingToken, ReasonMalformedJSON, ReasonContentType,
	ReasonBodyTooLarge,

	ReasonMissingClient, ReasonMissingSecret, ReasonInvalidSecret, ReasonUnexpectedSecret,
	ReasonProviderNotAllowed, ReasonClientMismatch, ReasonPublicClient, ReasonNoClientsConfigured,
	ReasonMultipleClientAuth, ReasonMalformedClientAuth, ReasonMalformedBody, ReasonDuplicateParameter,
	ReasonMissingGrantType, ReasonUnsupportedGrantType, ReasonActorTokenUnsupported,
	ReasonUnsupportedRequestedTokenType, ReasonMissingSubjectToken, ReasonMissingSubjectTokenType,
	ReasonUnsupportedTokenType, ReasonMissingSubjectIssuer,

	ReasonInvalidCredentials, ReasonRateLimited, ReasonMissingEmail, ReasonMissingPassword,
	ReasonInvalidEmail, ReasonEmailTaken, ReasonNoEmail, ReasonPasswordTooShort, ReasonPasswordTooLong,
	ReasonPasswordTooCommon, ReasonPasswordMatchesEmail, ReasonPasswordsOff,
	ReasonMissingCurrentPassword, ReasonReauthRequired, ReasonPasswordChanged,

	ReasonAdminToken, ReasonAdminDisabled, ReasonInvalidLimit, ReasonInvalidTime, ReasonInvalidRange,
	ReasonInvalidRoles, ReasonMissingRoles, ReasonKeysFromFiles, ReasonSecretInUse, ReasonBackupUnsupported,

	ReasonMalformedForm, ReasonMissingField, ReasonPasswordMismatch,

	ReasonInvalidUsername, ReasonUsernameIsEmail, ReasonUsernameTaken, ReasonConflictingIdentifiers,

	ReasonInvalidState,
	ReasonEmailNotConfigured, ReasonInvalidEmailToken, ReasonEmailAlreadyVerified, ReasonEmailQueueFull,

	ReasonSETInvalidRequest, ReasonSETInvalidKey, ReasonSETInvalidIssuer, ReasonSETInvalidAudience,

	ReasonClaimsHookFailed,

	ReasonAnonymousDisabled,
}

// Reasons returns every reason a client may see, this package's and the
// providers', each once. docs/api.md lists each of them.
func Reasons() []string {
	seen := map[string]bool{}
	var all []string
	for _, r := range append(append([]string{}, reasons...), providers.Reasons()...) {
		if !seen[r] {
			seen[r] = true
			all = append(all, r)
		}
	}
	return all
}

// Audit event types (storage.AuditEvent.Type), listed in docs/admin.md.
const (
	EventUserCreated          = "user.created"
	EventUserClaimed          = "user.claimed"
	EventUserEmailVouched     = "user.email_vouched"
	EventUserPasswordChanged  = "user.password_changed"
	EventUserDisabled         = "user.disabled"
	EventUserEnabled          = "user.enabled"
	EventUserDeleted          = "user.deleted"
	EventUserRoles            = "user.roles"
	EventIdentityLinked       = "identity.linked"
	EventIdentityUnlinked     = "identity.unlinked"
	EventSessionReused        = "session.reused"
	EventSessionRevoked       = "session.revoked"
	EventSessionRevokedAll    = "session.revoked_all"
	EventSessionAbandoned     = "session.abandoned"
	EventKeyRotated           = "key.rotated"
	EventKeyRevoked           = "key.revoked"
	EventRefreshSecretRotated = "refresh_secret.rotated"
	EventRefreshSecretRetired = "refresh_secret.retired"
	EventStoreBackup          = "store.backup"
	EventWebhookReplayed      = "webhook.replayed"
	// Email (exchange/email.go). A send's events never hold the token.
	EventUserEmailVerified = "user.email_verified"
	EventUserPasswordReset = "user.password_reset"
	EventEmailSent         = "email.sent"
	EventEmailRetrying     = "email.retrying"
	EventEmailFailed       = "email.failed"
	EventEmailThrottled    = "email.throttled"
	// EventSignalIdentifierChanged: an upstream identifier-changed signal
	// for one of our users (the identity's email set to its new-value,
	// unverified).
	EventSignalIdentifierChanged = "signal.identifier_changed"
	// EventUserUpgraded: an anonymous user linked its first identity.
	EventUserUpgraded = "user.upgraded"
	// EventNonceAttested: an id_token's nonce was not compared because a
	// client registered with verifies_nonce attested it (clients.go).
	EventNonceAttested = "nonce.attested"
)

// Session revocation reasons (storage.Session.RevokedReason, shown by the
// admin API as revoked_reason). ReasonReused is one too: a session revoked
// for refresh token reuse.
const (
	RevokeReasonLogout       = "logout"
	RevokeReasonLogoutOthers = "logout_others"
	RevokeReasonLogoutGlobal = "logout_global"
	RevokeReasonUserRevoked  = "user_revoked" // DELETE /v1/me/sessions/{id}
	RevokeReasonOAuthRevoke  = "oauth_revoke" // POST /oauth/revoke
	RevokeReasonAdmin        = "admin"
	RevokeReasonUserDisabled = "user_disabled"
	// RevokeReasonPasswordChanged: the user's other sessions, when the
	// password changes.
	RevokeReasonPasswordChanged = "password_changed"
	// RevokeReasonClaimedByVerifiedIdentity: a password account's sessions
	// when a verified provider identity claims its email.
	RevokeReasonClaimedByVerifiedIdentity = "claimed_by_verified_identity"
	// RevokeReasonSessionLimit: a session that a newer sign-in pushed past
	// tokens.max_sessions_per_user.
	RevokeReasonSessionLimit = "session_limit"
	// RevokeReasonPasswordReset: every session, when a mailed reset link
	// sets a new password.
	RevokeReasonPasswordReset = "password_reset"
	// ReasonRacedCredentialChange: a session that abandonSession gives up.
	ReasonRacedCredentialChange = "raced_credential_change"
	// RevokeReasonUpstreamSignal: a security event from the provider
	// (POST /v1/signals) ended the user's sessions.
	RevokeReasonUpstreamSignal = "upstream_signal"
)

// ReasonInvalidState: /admin/v1/webhooks/deliveries?state= is neither
// pending nor failed.
const ReasonInvalidState = "invalid_state"

// Webhook event types (the `type` of a delivered event), listed in
// docs/events.md. Append only: receivers switch on them.
const (
	WebhookUserCreated      = "user.created"
	WebhookUserUpdated      = "user.updated"
	WebhookUserDisabled     = "user.disabled"
	WebhookUserDeleted      = "user.deleted"
	WebhookIdentityLinked   = "identity.linked"
	WebhookIdentityUnlinked = "identity.unlinked"
	WebhookSessionRevoked   = "session.revoked"
)

// WebhookEvents is every webhook event type, for config validation.
var WebhookEvents = []string{WebhookUserCreated, WebhookUserUpdated, WebhookUserDisabled, WebhookUserDeleted,
	WebhookIdentityLinked, WebhookIdentityUnlinked, WebhookSessionRevoked}
