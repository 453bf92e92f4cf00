//! Monthly model budgets: which cap applies to a person. The admin's cap for them (one set with
//! `den user budget`, else den's default `models.monthly_budget_usd`) and a lower one they may
//! set themselves; the lower of the two applies. Shared by the gateway (which refuses requests
//! past it), the budget routes and the CLI.

use chrono::{DateTime, Utc};
use den_store::{Store, StoreError};
use uuid::Uuid;

/// The largest cap accepted, in US dollars a month (bounds typos, not spending).
pub const MAX_BUDGET_USD: f64 = 1_000_000.0;

/// A person's caps, resolved against den's default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Caps {
    /// The admin's cap for this person (theirs, else the default); `None`: no cap.
    pub admin: Option<f64>,
    /// The person's own cap.
    pub own: Option<f64>,
}

/// Which cap stopped a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapSetBy {
    Admin,
    Person,
}

impl Caps {
    pub async fn of(
        store: &Store,
        user_id: Uuid,
        default: Option<f64>,
    ) -> Result<Self, StoreError> {
        let record = store.budget(user_id).await?;
        Ok(Self {
            admin: record.admin_cap_usd.or(default),
            own: record.own_cap_usd,
        })
    }

    /// The cap that applies (the lower one) and who set it; the person's own wins a tie, as
    /// they can raise it themselves.
    pub fn applying(&self) -> Option<(f64, CapSetBy)> {
        match (self.admin, self.own) {
            (Some(admin), Some(own)) if admin < own => Some((admin, CapSetBy::Admin)),
            (_, Some(own)) => Some((own, CapSetBy::Person)),
            (Some(admin), None) => Some((admin, CapSetBy::Admin)),
            (None, None) => None,
        }
    }
}

/// A cap in US dollars a month: a finite number from 0 to [`MAX_BUDGET_USD`].
pub fn check_amount(usd: f64) -> Result<f64, String> {
    if !usd.is_finite() || !(0.0..=MAX_BUDGET_USD).contains(&usd) {
        return Err(format!(
            "a monthly budget must be a number of US dollars from 0 to {MAX_BUDGET_USD}"
        ));
    }
    Ok(usd)
}

/// The first instant of this calendar month, UTC.
pub fn month_start() -> DateTime<Utc> {
    use chrono::{Datelike, TimeZone};
    let day = Utc::now().date_naive();
    let first = day.with_day(1).unwrap_or(day);
    Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lower_cap_applies_and_says_who_set_it() {
        let caps = |admin, own| Caps { admin, own }.applying();
        assert_eq!(caps(None, None), None);
        assert_eq!(caps(Some(10.0), None), Some((10.0, CapSetBy::Admin)));
        assert_eq!(caps(None, Some(3.0)), Some((3.0, CapSetBy::Person)));
        assert_eq!(caps(Some(10.0), Some(3.0)), Some((3.0, CapSetBy::Person)));
        assert_eq!(caps(Some(2.0), Some(3.0)), Some((2.0, CapSetBy::Admin)));
        assert_eq!(caps(Some(3.0), Some(3.0)), Some((3.0, CapSetBy::Person)));
    }

    #[test]
    fn amounts_are_finite_and_bounded() {
        assert_eq!(check_amount(0.0), Ok(0.0));
        assert_eq!(check_amount(12.5), Ok(12.5));
        for bad in [-1.0, f64::NAN, f64::INFINITY, MAX_BUDGET_USD + 1.0] {
            assert!(check_amount(bad).is_err(), "{bad}");
        }
    }
}
