//! The client against the real OpenCode binary, driven by the scripted model.

mod live {
    mod harness;
    mod openapi;
    mod requests;
    mod terminals;
    mod turns;
}
