package publisher

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// HandleCounted handles fe as the stage does, through the stage's metrics
// middleware around Handle, and returns Process's Outcome.
func (p *Publisher) HandleCounted(ctx context.Context, fe messages.FetchedExport) (Outcome, error) {
	_, m, err := messages.EncodeWatermill(fe)
	if err != nil {
		return Outcome{}, err
	}
	m.SetContext(ctx)
	_, err = p.countExports(func(m *message.Message) ([]*message.Message, error) {
		return nil, p.Handle(m.Context(), m)
	})(m)
	return m.Context().Value(noteKey{}).(*exportNote).out, err
}
