use crate::harness::Harness;
use den_sandbox::ExitReason;

#[tokio::test]
async fn runs_a_command_as_an_unprivileged_user_in_the_workspace() {
    let h = Harness::new().await;
    let (reason, out) = h
        .run(h.spec("id -u; cat /proc/self/uid_map; pwd; cat README.md; echo changed > README.md; cat README.md; env | sort"))
        .await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    println!("{out}");
    assert!(out.starts_with("1000\n"), "{out}");
    assert_eq!(
        std::fs::read_to_string(h.workspace.join("README.md")).unwrap(),
        "seed\n",
        "the lower layer must stay untouched"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_pseudo_terminal_can_be_opened() {
    let h = Harness::new().await;
    let (reason, out) = h
        .run(h.spec("ls -la /dev /dev/pts; python3 -c 'import os; m, s = os.openpty(); print(\"pty\", os.ttyname(s))'"))
        .await;
    println!("{out}");
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    assert!(out.contains("pty /dev/pts/"), "{out}");
    h.finish().await;
}
