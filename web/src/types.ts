// Friendly names for the generated wire types (src/gen/api.ts, from den's Rust types).
import type { components } from "./gen/api";

type S = components["schemas"];
export type Session = S["Session"];
export type SessionStatus = S["SessionStatus"];
export type SessionPage = S["SessionPage"];
export type User = S["User"];
export type AuthOptions = S["AuthOptions"];
export type ApiToken = S["ApiToken"];
export type CreatedToken = S["CreatedToken"];
export type SequencedEvent = S["SequencedEvent"];
export type SessionEvent = S["SessionEvent"];
export type ServerMessage = S["ServerMessage"];
export type ClientMessage = S["ClientMessage"];
export type SessionListUpdate = S["SessionListUpdate"];
export type ToolCall = S["ToolCall"];
export type ToolState = S["ToolState"];
export type Todo = S["Todo"];
export type QueuedPrompt = S["QueuedPrompt"];
export type TokenUsage = S["TokenUsage"];
export type ProgressStep = S["ProgressStep"];
export type StepState = S["StepState"];
export type TurnOutcome = S["TurnOutcome"];
export type PromptAccepted = S["PromptAccepted"];
export type SessionDiff = S["SessionDiff"];
export type FileChange = S["FileChange"];
export type DiffSummary = S["DiffSummary"];
export type PushResult = S["PushResult"];
