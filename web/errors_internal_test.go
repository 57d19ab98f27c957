package web

import "testing"

// TestCompatErrorsTable: every view a handler may name has a rule, and
// every kind a rule overrides is one statusOf knows, so an override never
// shadows a kind the core table lacks.
func TestCompatErrorsTable(t *testing.T) {
	for _, v := range []compatView{viewFastAPI, viewDRF, viewDRFRegister, viewDRFLogin, viewAllauthSocial, viewDRFToken, viewDRFAuth} {
		rule, ok := compatErrors[v]
		if !ok {
			t.Errorf("view %q has no rule", v)
		}
		for k := range rule.status {
			if _, ok := statusOf[k]; !ok {
				t.Errorf("view %q overrides kind %v, which statusOf lacks", v, k)
			}
		}
	}
}
