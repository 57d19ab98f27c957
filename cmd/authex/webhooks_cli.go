package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/authex/authex/web"
)

func runWebhooksList(ctx context.Context, c *adminClient, o *adminOpts, _ []string) error {
	state := "pending"
	if o.failed {
		state = "failed"
	}
	return c.call(ctx, http.MethodGet, fmt.Sprintf("/admin/v1/webhooks/deliveries?state=%s&limit=%d", state, o.limit), nil, printDeliveries)
}

func printDeliveries(w io.Writer, raw []byte) error {
	var out struct {
		Deliveries []web.AdminDelivery `json:"deliveries"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, d := range out.Deliveries {
		next := "-"
		if d.NextAttemptAt != nil {
			next = when(*d.NextAttemptAt)
		}
		if d.FailedAt != nil {
			next = "failed " + when(*d.FailedAt)
		}
		rows = append(rows, []string{d.Endpoint, d.ID, d.Type, d.UserID, fmt.Sprint(d.Attempts), next, dash(d.LastError)})
	}
	table(w, "ENDPOINT\tID\tTYPE\tUSER\tATTEMPTS\tNEXT\tLAST ERROR", rows)
	return nil
}
