// A rendering error in one page shows a message and a way on, instead of a blank page.
import { Component, type ReactNode } from "react";

type Props = { children: ReactNode };
type State = { error: Error | null };

export class ErrorBoundary extends Component<Props, State> {
  override state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  override componentDidCatch(error: Error) {
    // The console keeps the stack for whoever reports it.
    console.error("den: this page failed to render", error);
  }

  override render() {
    if (!this.state.error) return this.props.children;
    return (
      <div className="empty" role="alert">
        <h1>Something went wrong on this page</h1>
        <p className="muted">den's page hit an error it did not expect ({this.state.error.message}). Your sessions are not affected.</p>
        <button onClick={() => location.reload()}>Reload the page</button>
      </div>
    );
  }
}
