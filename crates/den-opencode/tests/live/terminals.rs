use std::collections::BTreeMap;

use den_opencode::{CreatePty, PtyConnection, PtySize};
use tokio::time::Instant;

use crate::live::harness::{Live, PASSWORD, TURN_WITHIN};

/// Reads the terminal's output until it contains `needle`; returns what was read.
async fn until_output(connection: &mut PtyConnection, needle: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + TURN_WITHIN;
    let mut seen = String::new();
    while !seen.contains(needle) {
        let output = tokio::time::timeout_at(deadline, connection.next_output())
            .await
            .map_err(|_| anyhow::anyhow!("no {needle:?} in time; saw {seen:?}"))?;
        match output {
            Some(text) => seen.push_str(&text?),
            None => anyhow::bail!("the terminal closed; saw {seen:?}"),
        }
    }
    Ok(seen)
}

#[tokio::test]
async fn a_terminal_echoes_resizes_hides_the_server_password_and_ends_when_removed()
-> anyhow::Result<()> {
    let live = Live::start().await?;
    let env = BTreeMap::from([("OPENCODE_SERVER_PASSWORD".to_owned(), String::new())]);
    let pty = live
        .client
        .create_pty(&CreatePty {
            title: Some("t".into()),
            env,
        })
        .await?;
    assert!(pty.id.starts_with("pty_"), "{pty:?}");
    let mut connection = live.client.connect_pty(&pty.id).await?;

    // The marker is split by quotes on the command line, so only the answer matches.
    connection
        .send_input("echo \"A\"\"B=$((6 * 7))/[$OPENCODE_SERVER_PASSWORD]/E\"\"ND\"\r")
        .await?;
    let seen = until_output(&mut connection, "/END").await?;
    assert!(seen.contains("AB=42/[]/END"), "{seen}");
    assert!(
        !seen.contains(PASSWORD),
        "the shell saw the password: {seen}"
    );

    live.client
        .resize_pty(
            &pty.id,
            PtySize {
                rows: 40,
                cols: 100,
            },
        )
        .await?;
    connection
        .send_input("echo \"S\"\"Z=$(stty size)\"\r")
        .await?;
    until_output(&mut connection, "SZ=40 100").await?;

    live.client.remove_pty(&pty.id).await?;
    let deadline = Instant::now() + TURN_WITHIN;
    loop {
        match tokio::time::timeout_at(deadline, connection.next_output()).await? {
            None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    Ok(())
}
