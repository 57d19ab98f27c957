package web

// The API's response records, exported for Go clients in this module (the
// admin CLI decodes the answers into them rather than into mirror structs).
type (
	// ErrorBody is every error answer's JSON.
	ErrorBody = errorBody
	// AdminUser is a user as the admin API shows it.
	AdminUser = adminUserJSON
	// AdminIdentity is one of an AdminUser's identities.
	AdminIdentity = adminIdentityJSON
	// AdminSession is a session as the admin API shows it.
	AdminSession = adminSessionJSON
	// AdminKey is a signing key as the admin API shows it.
	AdminKey = adminKeyJSON
	// AdminRefreshSecret is a refresh-token MAC secret as the admin API shows it.
	AdminRefreshSecret = adminRefreshSecretJSON
	// AdminAuditEvent is an audit event as the admin API shows it.
	AdminAuditEvent = adminAuditJSON
)

// AdminDelivery is one webhook delivery in GET /admin/v1/webhooks/deliveries.
type AdminDelivery = adminDeliveryJSON
