//! Network records: one row per user-defined network (name, ID, creation time and its
//! configuration as JSON the container crate owns), and one row per endpoint, the address a
//! running container holds on a network. Endpoints are added under the store lock (a
//! [`Publisher`]), so two containers starting at once never get the same address.

use rusqlite::{params, Connection, OptionalExtension};

use crate::db::Cached;
use crate::error::{Error, Result};
use crate::publish::Publisher;
use crate::Store;

/// A network known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRecord {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// Configuration as JSON (owned by the container crate).
    pub config: String,
}

/// A running container's place on a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    pub network_id: String,
    pub container_id: String,
    /// 64 hex digits.
    pub endpoint_id: String,
    /// The IPv4 address, without prefix length.
    pub ip: String,
    pub mac: String,
    /// The interface name in the container (`eth0`, `eth1`, ...).
    pub ifname: String,
}

fn network_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetworkRecord> {
    Ok(NetworkRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        created: r.get(2)?,
        config: r.get(3)?,
    })
}

fn endpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EndpointRecord> {
    Ok(EndpointRecord {
        network_id: r.get(0)?,
        container_id: r.get(1)?,
        endpoint_id: r.get(2)?,
        ip: r.get(3)?,
        mac: r.get(4)?,
        ifname: r.get(5)?,
    })
}

fn networks_on(conn: &Connection) -> Result<Vec<NetworkRecord>> {
    let mut st =
        conn.prepare_cached("SELECT id, name, created, config FROM networks ORDER BY name, id")?;
    let rows = st.query_map([], network_row)?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn endpoints_on(conn: &Connection, filter: &str, arg: &str) -> Result<Vec<EndpointRecord>> {
    let sql = format!(
        "SELECT network_id, container_id, endpoint_id, ip, mac, ifname FROM endpoints {filter} \
         ORDER BY network_id, ip"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = if filter.is_empty() {
        st.query_map([], endpoint_row)?
            .collect::<std::result::Result<Vec<_>, _>>()?
    } else {
        st.query_map([arg], endpoint_row)?
            .collect::<std::result::Result<Vec<_>, _>>()?
    };
    Ok(rows)
}

impl Store {
    /// Every network, by name.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        networks_on(&self.db.conn)
    }

    /// A network by full ID.
    pub fn network(&self, id: &str) -> Result<Option<NetworkRecord>> {
        Ok(self
            .db
            .conn
            .row(
                "SELECT id, name, created, config FROM networks WHERE id = ?1",
                [id],
                network_row,
            )
            .optional()?)
    }

    /// Every endpoint.
    pub fn endpoints(&self) -> Result<Vec<EndpointRecord>> {
        endpoints_on(&self.db.conn, "", "")
    }

    /// The endpoints on a network.
    pub fn network_endpoints(&self, network_id: &str) -> Result<Vec<EndpointRecord>> {
        endpoints_on(&self.db.conn, "WHERE network_id = ?1", network_id)
    }

    /// The endpoints of a container.
    pub fn container_endpoints(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        endpoints_on(&self.db.conn, "WHERE container_id = ?1", container_id)
    }

    /// Removes a container's endpoint on a network; whether there was one.
    pub fn delete_endpoint(&self, network_id: &str, container_id: &str) -> Result<bool> {
        let n = self.db.conn.exec(
            "DELETE FROM endpoints WHERE network_id = ?1 AND container_id = ?2",
            params![network_id, container_id],
        )?;
        Ok(n > 0)
    }

    /// Removes every endpoint of a container and returns them.
    pub fn delete_container_endpoints(
        &mut self,
        container_id: &str,
    ) -> Result<Vec<EndpointRecord>> {
        let tx = self.db.conn.transaction()?;
        let eps = endpoints_on(&tx, "WHERE container_id = ?1", container_id)?;
        tx.exec(
            "DELETE FROM endpoints WHERE container_id = ?1",
            [container_id],
        )?;
        tx.commit()?;
        Ok(eps)
    }

    /// Replaces a network's configuration JSON.
    pub fn set_network_config(&self, id: &str, config: &str) -> Result<()> {
        self.db.conn.exec(
            "UPDATE networks SET config = ?2 WHERE id = ?1",
            params![id, config],
        )?;
        Ok(())
    }
}

impl Publisher<'_> {
    /// Every network, by name (seen in this transaction).
    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        networks_on(self.tx())
    }

    /// Records a network; its name must be free.
    pub fn add_network(&mut self, n: &NetworkRecord) -> Result<()> {
        let taken: Option<String> = self
            .tx()
            .row("SELECT id FROM networks WHERE name = ?1", [&n.name], |r| {
                r.get(0)
            })
            .optional()?;
        if taken.is_some() {
            return Err(Error::NetworkNameInUse(n.name.clone()));
        }
        self.tx().exec(
            "INSERT INTO networks (id, name, created, config) VALUES (?1, ?2, ?3, ?4)",
            params![n.id, n.name, n.created, n.config],
        )?;
        Ok(())
    }

    /// Deletes a network and any endpoint left on it.
    pub fn delete_network(&mut self, id: &str) -> Result<()> {
        self.tx()
            .exec("DELETE FROM endpoints WHERE network_id = ?1", [id])?;
        let n = self.tx().exec("DELETE FROM networks WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(Error::NetworkNotFound(id.to_string()));
        }
        Ok(())
    }

    /// The endpoints on a network (seen in this transaction).
    pub fn network_endpoints(&self, network_id: &str) -> Result<Vec<EndpointRecord>> {
        endpoints_on(self.tx(), "WHERE network_id = ?1", network_id)
    }

    /// The endpoints of a container (seen in this transaction).
    pub fn container_endpoints(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        endpoints_on(self.tx(), "WHERE container_id = ?1", container_id)
    }

    /// Records an endpoint (its address must be free on the network).
    pub fn add_endpoint(&mut self, e: &EndpointRecord) -> Result<()> {
        self.tx().exec(
            "INSERT INTO endpoints (network_id, container_id, endpoint_id, ip, mac, ifname)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                e.network_id,
                e.container_id,
                e.endpoint_id,
                e.ip,
                e.mac,
                e.ifname
            ],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(id: &str, name: &str) -> NetworkRecord {
        NetworkRecord {
            id: id.into(),
            name: name.into(),
            created: "2026-01-01T00:00:00Z".into(),
            config: "{}".into(),
        }
    }

    #[test]
    fn networks_and_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let mut p = s.publish().unwrap();
        p.add_network(&net("a1", "one")).unwrap();
        assert!(matches!(
            p.add_network(&net("b2", "one")),
            Err(Error::NetworkNameInUse(n)) if n == "one"
        ));
        p.add_network(&net("b2", "two")).unwrap();
        let ep = |c: &str, ip: &str| EndpointRecord {
            network_id: "a1".into(),
            container_id: c.into(),
            endpoint_id: format!("e{c}"),
            ip: ip.into(),
            mac: "02:42:00:00:00:00".into(),
            ifname: "eth0".into(),
        };
        p.add_endpoint(&ep("c1", "172.18.0.2")).unwrap();
        assert!(
            p.add_endpoint(&ep("c2", "172.18.0.2")).is_err(),
            "same address"
        );
        p.add_endpoint(&ep("c2", "172.18.0.3")).unwrap();
        p.commit().unwrap();
        let names: Vec<String> = s.networks().unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["one", "two"]);
        assert_eq!(s.network_endpoints("a1").unwrap().len(), 2);
        assert_eq!(s.delete_container_endpoints("c1").unwrap().len(), 1);
        assert_eq!(s.container_endpoints("c1").unwrap(), vec![]);
        let mut p = s.publish().unwrap();
        p.delete_network("a1").unwrap();
        p.commit().unwrap();
        assert!(s.network("a1").unwrap().is_none());
        assert!(s.endpoints().unwrap().is_empty());
    }
}
