// Keeps a scrolled conversation at its end while the reader is there: it opens at the end,
// follows new output (whatever makes the content grow: new rows, streamed text, late layout),
// and stops following only when the reader scrolls up. Layout alone never stops it: content
// growing or shrinking moves the end, not the reader, so only a scroll that leaves the end
// *upwards* counts as the reader's choice. `jump()` returns to the end and follows again.
import { useCallback, useEffect, useRef, useState } from "react";

/** How near the end (in CSS pixels) still counts as "at the end". */
const AT_END = 24;

export function useFollow(scrollerSelector = ".main") {
  const [content, setContent] = useState<HTMLElement | null>(null);
  const stick = useRef(true);
  const [following, setFollowing] = useState(true);
  const scroller = useCallback(() => content?.closest<HTMLElement>(scrollerSelector) ?? null, [content, scrollerSelector]);

  useEffect(() => {
    const s = scroller();
    if (!content || !s) return;
    const toEnd = () => {
      s.scrollTop = s.scrollHeight;
    };
    let lastTop = s.scrollTop;
    const onScroll = () => {
      const gap = s.scrollHeight - s.scrollTop - s.clientHeight;
      if (gap <= AT_END) stick.current = true;
      else if (s.scrollTop < lastTop - 1) stick.current = false;
      lastTop = s.scrollTop;
      setFollowing(stick.current);
    };
    // Any change of size (rows added, a part growing, the footer's queue appearing) while
    // following: back to the end.
    const resized = new ResizeObserver(() => {
      if (stick.current) toEnd();
    });
    resized.observe(content);
    if (s.firstElementChild) resized.observe(s.firstElementChild);
    s.addEventListener("scroll", onScroll, { passive: true });
    if (stick.current) toEnd();
    return () => {
      resized.disconnect();
      s.removeEventListener("scroll", onScroll);
    };
  }, [content, scroller]);

  const jump = useCallback(() => {
    stick.current = true;
    setFollowing(true);
    const s = scroller();
    if (s) s.scrollTop = s.scrollHeight;
  }, [scroller]);

  return { ref: setContent, following, jump };
}
