package exchange

import (
	"context"

	"github.com/authex/authex/storage"
)

// Webhook deliveries for the operator (docs/events.md, "Outages").

// Delivery states for ListDeliveries.
const (
	DeliveryPending = "pending"
	DeliveryFailed  = "failed"
)

// ListDeliveries lists the pending or the failed webhook deliveries,
// oldest first. limit <= 0: DefaultUserPage.
func (a *Admin) ListDeliveries(ctx context.Context, state string, limit int) ([]storage.OutboxRecord, error) {
	if state != DeliveryPending && state != DeliveryFailed {
		return nil, newError(KindInvalidRequest, ReasonInvalidState, "state must be pending or failed", nil)
	}
	if limit < 0 || limit > MaxUserPage {
		return nil, newError(KindInvalidRequest, ReasonInvalidLimit, "limit must be 1 to 1000", nil)
	}
	if limit == 0 {
		limit = DefaultUserPage
	}
	ob, ok := storage.As[storage.Outbox](a.s.store)
	if !ok {
		return nil, nil
	}
	recs, err := ob.ListOutbox(ctx, storage.OutboxFilter{Failed: state == DeliveryFailed, Limit: limit})
	if err != nil {
		return nil, storeError(err)
	}
	return recs, nil
}

// ReplayDelivery makes one delivery (failed or pending) due now, with its
// attempts reset, and wakes this instance's worker. A replayed failure
// goes out after its user's later events, which did not wait for it.
func (a *Admin) ReplayDelivery(ctx context.Context, endpoint, id, actor string) (storage.OutboxRecord, error) {
	ob, ok := storage.As[storage.Outbox](a.s.store)
	if !ok {
		return storage.OutboxRecord{}, newError(KindNotFound, ReasonNotFound, "no webhook delivery with this id", nil)
	}
	r, err := ob.ReplayOutbox(ctx, endpoint, id, a.s.now().UTC())
	if err != nil {
		return r, notFound(err, "no webhook delivery with this id for this endpoint")
	}
	a.s.audit(ctx, storage.AuditEvent{Type: EventWebhookReplayed, UserID: r.UserID, Detail: r.Type + " " + r.ID + " to " + endpoint + " by " + actor})
	if a.s.webhookNotify != nil {
		a.s.webhookNotify()
	}
	return r, nil
}
