//! Volume records: one row per volume (its driver, labels and options as JSON the container
//! crate owns), and which containers mount which volume. Whether a volume is in use is
//! derived from the containers that name it (rows removed with the container), never a
//! stored count, so it cannot drift.

use rusqlite::{params, Connection, OptionalExtension};

use crate::db::Cached;
use crate::error::{Error, Result};
use crate::publish::Publisher;
use crate::Store;

/// A volume known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRecord {
    pub name: String,
    /// `local`.
    pub driver: String,
    /// Labels as a JSON object (`{}` for none).
    pub labels: String,
    /// Driver options as a JSON object (`{}` for none).
    pub options: String,
    /// RFC 3339.
    pub created: String,
}

const COLUMNS: &str = "name, driver, labels, options, created";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VolumeRecord> {
    Ok(VolumeRecord {
        name: r.get(0)?,
        driver: r.get(1)?,
        labels: r.get(2)?,
        options: r.get(3)?,
        created: r.get(4)?,
    })
}

fn volume_on(conn: &Connection, name: &str) -> Result<Option<VolumeRecord>> {
    Ok(conn
        .row(
            &format!("SELECT {COLUMNS} FROM volumes WHERE name = ?1"),
            [name],
            row,
        )
        .optional()?)
}

fn users_on(conn: &Connection, name: &str) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT v.container_id FROM container_volumes v JOIN containers c ON c.id = v.container_id
         WHERE v.volume = ?1 ORDER BY c.created, c.id",
    )?;
    let rows = st.query_map([name], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

impl Publisher<'_> {
    /// Records a volume unless one of that name exists; returns the record now stored. The
    /// volume's directory must already be in place.
    pub fn add_volume(&mut self, v: &VolumeRecord) -> Result<VolumeRecord> {
        if let Some(existing) = volume_on(self.tx(), &v.name)? {
            return Ok(existing);
        }
        self.tx().exec(
            &format!("INSERT INTO volumes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![v.name, v.driver, v.labels, v.options, v.created],
        )?;
        Ok(v.clone())
    }

    /// Records that a container mounts a volume (recorded in the same transaction).
    pub fn attach_volume(&mut self, container: &str, volume: &str) -> Result<()> {
        self.tx().exec(
            "INSERT OR IGNORE INTO container_volumes (container_id, volume) VALUES (?1, ?2)",
            params![container, volume],
        )?;
        Ok(())
    }

    /// Deletes a volume's record, refused while a container uses it ([`Error::VolumeInUse`]).
    /// Its directory is the caller's to remove after the commit.
    pub fn delete_volume(&mut self, name: &str) -> Result<()> {
        let users = users_on(self.tx(), name)?;
        if !users.is_empty() {
            return Err(Error::VolumeInUse {
                name: name.to_string(),
                containers: users,
            });
        }
        let n = self
            .tx()
            .exec("DELETE FROM volumes WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(Error::VolumeNotFound(name.to_string()));
        }
        Ok(())
    }

    /// A volume by name, in this transaction.
    pub fn volume(&self, name: &str) -> Result<Option<VolumeRecord>> {
        volume_on(self.tx(), name)
    }
}

impl Store {
    /// A volume by name.
    pub fn volume(&self, name: &str) -> Result<Option<VolumeRecord>> {
        volume_on(&self.db.conn, name)
    }

    /// Every volume, by name.
    pub fn volumes(&self) -> Result<Vec<VolumeRecord>> {
        let mut st = self
            .db
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM volumes ORDER BY name"))?;
        let rows = st.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The containers (IDs, oldest first) that mount a volume.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        users_on(&self.db.conn, name)
    }

    /// The volumes a container mounts.
    pub fn container_volumes(&self, container: &str) -> Result<Vec<String>> {
        let mut st = self.db.conn.prepare_cached(
            "SELECT volume FROM container_volumes WHERE container_id = ?1 ORDER BY volume",
        )?;
        let rows = st.query_map([container], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewContainer, NewImage};

    fn vol(name: &str) -> VolumeRecord {
        VolumeRecord {
            name: name.into(),
            driver: "local".into(),
            labels: "{}".into(),
            options: "{}".into(),
            created: "2024-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn volumes_in_use_follow_their_containers() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut p = store.publish().unwrap();
        let img = p
            .add_image(&NewImage {
                config: br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#,
                layers: &[],
                parent: None,
                created: "2024-01-01T00:00:00Z",
            })
            .unwrap();
        p.add_volume(&vol("data")).unwrap();
        // A second create of the same name keeps the first record.
        let mut other = vol("data");
        other.labels = r#"{"a":"b"}"#.into();
        assert_eq!(p.add_volume(&other).unwrap().labels, "{}");
        p.add_volume(&vol("spare")).unwrap();
        let id = "c".repeat(64);
        p.add_container(&NewContainer {
            id: &id,
            name: "one",
            image_id: &img,
            image_name: "x",
            snapshot: &id,
            config: "{}",
        })
        .unwrap();
        p.attach_volume(&id, "data").unwrap();
        p.commit().unwrap();
        assert_eq!(store.volume_users("data").unwrap(), vec![id.clone()]);
        assert_eq!(store.container_volumes(&id).unwrap(), vec!["data"]);
        let mut p = store.publish().unwrap();
        assert!(matches!(
            p.delete_volume("data"),
            Err(Error::VolumeInUse { .. })
        ));
        p.delete_volume("spare").unwrap();
        assert!(matches!(
            p.delete_volume("nope"),
            Err(Error::VolumeNotFound(_))
        ));
        p.commit().unwrap();
        store.delete_container(&id).unwrap();
        assert!(store.volume_users("data").unwrap().is_empty());
        let mut p = store.publish().unwrap();
        p.delete_volume("data").unwrap();
        p.commit().unwrap();
        assert!(store.volumes().unwrap().is_empty());
    }
}
