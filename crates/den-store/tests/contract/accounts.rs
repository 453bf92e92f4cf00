//! The contract of what belongs to a person's account: budgets and the GitHub link.

use super::{StoreError, Uuid, stores, user};

#[tokio::test]
async fn budgets_keep_the_admins_and_the_persons_own_cap_apart() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let none = den_store::BudgetRecord::default();
        assert_eq!(store.budget(alice).await.unwrap(), none);
        store.set_own_budget(alice, Some(5.0)).await.unwrap();
        store.set_admin_budget(alice, Some(20.0)).await.unwrap();
        let set = den_store::BudgetRecord {
            admin_cap_usd: Some(20.0),
            own_cap_usd: Some(5.0),
        };
        assert_eq!(
            store.budget(alice).await.unwrap(),
            set,
            "{}",
            store.backend_name()
        );
        assert_eq!(store.budget(bob).await.unwrap(), none, "bob's untouched");
        // Clearing one leaves the other.
        store.set_admin_budget(alice, None).await.unwrap();
        assert_eq!(
            store.budget(alice).await.unwrap(),
            den_store::BudgetRecord {
                admin_cap_usd: None,
                own_cap_usd: Some(5.0)
            }
        );
        store.delete_user(alice).await.unwrap();
        assert_eq!(store.budget(alice).await.unwrap(), none);
    }
}

#[tokio::test]
async fn a_github_account_links_to_one_user_only() {
    let (stores, _dir) = stores().await;
    for store in stores {
        let ada = user(&store, "ada").await;
        let bob = user(&store, "bob").await;
        store.link_github(ada, 583_231, "octocat").await.unwrap();
        let found = store.user_by_github_id(583_231).await.unwrap();
        assert_eq!(
            (found.id, found.github_login.as_deref()),
            (ada, Some("octocat"))
        );
        assert!(matches!(
            store.link_github(bob, 583_231, "octocat").await,
            Err(StoreError::Conflict(_))
        ));
        assert!(store.user_by_id(bob).await.unwrap().github_id.is_none());
        assert!(matches!(
            store.link_github(Uuid::now_v7(), 1, "nobody").await,
            Err(StoreError::NotFound)
        ));
    }
}
