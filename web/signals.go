package web

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/authex/authex/exchange"
)

// setMediaType is the media type of a pushed SET (RFC 8935 §2).
const setMediaType = "application/secevent+jwt"

// setErrorBody is RFC 8935 §2.3's error body.
type setErrorBody struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

// handleSignal receives a Security Event Token pushed by an upstream
// transmitter (RFC 8935): 202 when accepted, 400 with {"err",
// "description"} when refused, 503 when the store or the transmitter's
// keys cannot be reached (the transmitter retries).
func (s *Server) handleSignal(c echo.Context) error {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != setMediaType {
		return c.JSON(http.StatusBadRequest, setErrorBody{Err: exchange.ReasonSETInvalidRequest,
			Description: "Content-Type must be " + setMediaType})
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return c.JSON(http.StatusBadRequest, setErrorBody{Err: exchange.ReasonSETInvalidRequest,
				Description: "the SET is larger than 64 KiB"})
		}
		return err
	}
	err = s.svc.ReceiveSignal(c.Request().Context(), string(body))
	if err == nil {
		return c.NoContent(http.StatusAccepted)
	}
	e := exchange.AsError(err)
	if e.Kind != exchange.KindInvalidRequest {
		return err
	}
	s.log.InfoContext(c.Request().Context(), "security event token refused",
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err_code", e.Reason, "err", e.Err)
	return c.JSON(http.StatusBadRequest, setErrorBody{Err: e.Reason, Description: e.Description})
}
