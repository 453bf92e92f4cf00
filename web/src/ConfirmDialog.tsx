import { useEffect, useRef } from "react";

// A modal confirmation on the native <dialog>: focus trapping and Escape come with it.
export function ConfirmDialog(props: { title: string; body: string; confirm: string; onConfirm: () => void; onCancel: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} className="card dialog" aria-labelledby="confirm-title" onCancel={props.onCancel}>
      <h2 id="confirm-title">{props.title}</h2>
      <p>{props.body}</p>
      <div className="row end">
        <button onClick={props.onCancel} autoFocus>
          Cancel
        </button>
        <button className="danger" onClick={props.onConfirm}>
          {props.confirm}
        </button>
      </div>
    </dialog>
  );
}
