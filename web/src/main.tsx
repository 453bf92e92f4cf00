import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { SharedView } from "./SharedView";
import "./styles.css";

const shareToken = /^\/share\/([^/]+)$/.exec(location.pathname)?.[1];

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    {/* A share link's page needs no sign-in and shows nothing of the app around it. */}
    {shareToken ? <SharedView token={decodeURIComponent(shareToken)} /> : <App />}
  </StrictMode>,
);
