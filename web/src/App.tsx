import { useCallback, useEffect, useState } from "react";
import { ApiError, api } from "./api";
import { ErrorBoundary } from "./ErrorBoundary";
import { Home } from "./Home";
import { Link, navigate, usePath } from "./router";
import { SessionPage } from "./SessionPage";
import { reset as resetSessions } from "./sessions";
import { Settings } from "./Settings";
import { VariantsPage } from "./VariantsPage";
import { Sidebar } from "./Sidebar";
import { SignIn } from "./SignIn";
import type { AuthOptions, User } from "./types";

type Auth = { state: "loading" } | { state: "out"; options: AuthOptions } | { state: "in"; user: User } | { state: "down"; message: string };

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: "loading" });
  const [menuOpen, setMenuOpen] = useState(false);
  const path = usePath();

  const load = useCallback(async () => {
    try {
      setAuth({ state: "in", user: await api.me() });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        const options = await api.options().catch(() => ({ github: false }));
        setAuth({ state: "out", options });
      } else setAuth({ state: "down", message: (e as Error).message });
    }
  }, []);
  useEffect(() => {
    void load();
    const signedOut = () => {
      resetSessions();
      void load();
    };
    window.addEventListener("den:signed-out", signedOut);
    return () => window.removeEventListener("den:signed-out", signedOut);
  }, [load]);
  useEffect(() => setMenuOpen(false), [path]);
  // A session page names the tab after its session; elsewhere it is den.
  useEffect(() => {
    if (!path.startsWith("/s/")) document.title = "den";
  }, [path]);

  // Nothing but a quiet placeholder until we know who is here: no flash of the wrong screen.
  if (auth.state === "loading") return <div className="splash" aria-busy="true" aria-label="Loading" />;
  if (auth.state === "down")
    return (
      <main className="center">
        <div className="card" role="alert">
          <h1>den is not answering</h1>
          <p>{auth.message}</p>
          <button onClick={() => void load()}>Try again</button>
        </div>
      </main>
    );
  if (auth.state === "out") return <SignIn options={auth.options} onSignedIn={(user) => setAuth({ state: "in", user })} />;

  const signOut = async () => {
    await api.logout().catch(() => undefined);
    resetSessions();
    navigate("/", true);
    await load();
  };

  const session = /^\/s\/([^/]+)$/.exec(path)?.[1];
  let page;
  if (session) page = <SessionPage key={session} id={decodeURIComponent(session)} />;
  else if (path === "/settings") page = <Settings user={auth.user} onSignOut={signOut} onAccountChanged={() => void load()} />;
  else if (path === "/") page = <Home />;
  else if (path === "/variants") {
    const query = new URLSearchParams(location.search);
    const ids = (query.get("ids") ?? "").split(",").filter(Boolean);
    page = <VariantsPage ids={ids} of={query.get("of")} />;
  }
  else
    page = (
      <div className="empty">
        <h1>Page not found</h1>
        <Link href="/">Go home</Link>
      </div>
    );

  return (
    <div className={`shell${menuOpen ? " menu-open" : ""}`}>
      <header className="topbar">
        <button className="icon" aria-label="Sessions menu" aria-expanded={menuOpen} onClick={() => setMenuOpen((o) => !o)}>
          ☰
        </button>
        <Link href="/" className="brand">
          den
        </Link>
      </header>
      <Sidebar user={auth.user} current={session ?? null} />
      {/* On a phone the open drawer dims the page; a tap beside it closes it. */}
      {menuOpen && <div className="scrim" aria-hidden="true" onClick={() => setMenuOpen(false)} />}
      <main className="main">
        <ErrorBoundary key={path}>{page}</ErrorBoundary>
      </main>
    </div>
  );
}
