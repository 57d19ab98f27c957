package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
	"github.com/authex/authex/storage"
)

// adminDeliveryJSON is one webhook delivery in the admin API; the payload
// is left out (it holds user data, and the receiver has the catalogue).
type adminDeliveryJSON struct {
	ID            string     `json:"id"`
	Endpoint      string     `json:"endpoint"`
	UserID        string     `json:"user_id"`
	Type          string     `json:"type"`
	CreatedAt     time.Time  `json:"created_at"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	FailedAt      *time.Time `json:"failed_at,omitempty"`
}

func toAdminDelivery(r storage.OutboxRecord) adminDeliveryJSON {
	out := adminDeliveryJSON{ID: r.ID, Endpoint: r.Endpoint, UserID: r.UserID, Type: r.Type, CreatedAt: r.CreatedAt.UTC(),
		Attempts: r.Attempts, LastError: r.LastError, FailedAt: optTime(r.FailedAt)}
	if !r.Failed() {
		out.NextAttemptAt = optTime(r.NextAttemptAt)
	}
	return out
}

// handleAdminDeliveries: GET /admin/v1/webhooks/deliveries?state=pending|failed&limit=N.
func (s *Server) handleAdminDeliveries(c echo.Context) error {
	state := c.QueryParam("state")
	if state == "" {
		state = exchange.DeliveryPending
	}
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	recs, err := s.admin.ListDeliveries(c.Request().Context(), state, limit)
	if err != nil {
		return err
	}
	out := make([]adminDeliveryJSON, 0, len(recs))
	for _, r := range recs {
		out = append(out, toAdminDelivery(r))
	}
	return c.JSON(http.StatusOK, map[string]any{"deliveries": out})
}

// handleAdminReplayDelivery: POST /admin/v1/webhooks/deliveries/{endpoint}/{id}/replay.
func (s *Server) handleAdminReplayDelivery(c echo.Context) error {
	r, err := s.admin.ReplayDelivery(c.Request().Context(), c.Param("endpoint"), c.Param("id"), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"delivery": toAdminDelivery(r)})
}
