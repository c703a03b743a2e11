-- Mock mainframe core: ledger tables, DB2 style. This file is a published CONTRACT:
-- the adapter side's mapping files name these tables and columns, and contract tests
-- compare them against this DDL. Portable between SQLite and PostgreSQL.
--
-- Conventions (as on the real core):
--   * CHAR columns are fixed width and padded with trailing blanks (trim on read);
--   * amounts are DECIMAL(15,2); a JPY amount is still stored with two decimals (.00);
--   * dates are DECIMAL(7,0) in CYYMMDD form (C = 0 for 19xx, 1 for 20xx; 0 = no date);
--     times are DECIMAL(6,0) HHMMSS;
--   * status and indicator columns are single letters (code tables below).

-- CUST_STAT: A active, B blocked, C closed        CUST_TYPE: P personal, B business
CREATE TABLE CUSTMAST (
    CUST_NO     CHAR(10)      NOT NULL PRIMARY KEY,
    CUST_TYPE   CHAR(1)       NOT NULL,
    CUST_STAT   CHAR(1)       NOT NULL,
    LAST_NAME   CHAR(30)      NOT NULL,
    FIRST_NAME  CHAR(20)      NOT NULL,
    BIRTH_DT    DECIMAL(7,0)  NOT NULL,
    TAX_ID      CHAR(11)      NOT NULL,
    EMAIL_ADDR  CHAR(50)      NOT NULL,
    PHONE_NO    CHAR(15)      NOT NULL,
    ADDR_LINE1  CHAR(35)      NOT NULL,
    CITY        CHAR(25)      NOT NULL,
    POST_CD     CHAR(10)      NOT NULL,
    CNTRY_CD    CHAR(2)       NOT NULL,
    BRANCH_CD   CHAR(4)       NOT NULL,
    CREATE_DT   DECIMAL(7,0)  NOT NULL
);

-- ACCT_STAT: A active (open), D dormant, F frozen, C closed.  Only A accounts can post.
-- PROD_CD:   CHK1 current account, SAV1 savings, BUS1 business current, FCY1 foreign-currency account
-- AVAIL_BAL = LEDGER_BAL - HOLD_AMT (card authorisations not yet posted)
CREATE TABLE ACCTMAST (
    ACCT_NO     CHAR(12)      NOT NULL PRIMARY KEY,
    CUST_NO     CHAR(10)      NOT NULL,
    PROD_CD     CHAR(4)       NOT NULL,
    CURR_CD     CHAR(3)       NOT NULL,
    ACCT_STAT   CHAR(1)       NOT NULL,
    ACCT_TITLE  CHAR(30)      NOT NULL,
    LEDGER_BAL  DECIMAL(15,2) NOT NULL,
    AVAIL_BAL   DECIMAL(15,2) NOT NULL,
    HOLD_AMT    DECIMAL(15,2) NOT NULL,
    OPEN_DT     DECIMAL(7,0)  NOT NULL,
    CLOSE_DT    DECIMAL(7,0)  NOT NULL,
    LAST_TXN_DT DECIMAL(7,0)  NOT NULL,
    LAST_SEQ    DECIMAL(9,0)  NOT NULL,
    BRANCH_CD   CHAR(4)       NOT NULL
);
CREATE INDEX ACCTMAST_X1 ON ACCTMAST (CUST_NO);

-- DR_CR_IND: D debit, C credit (TXN_AMT is unsigned; the sign is the indicator)
-- TXN_CD: SAL salary, DEP deposit, POS card purchase, ATM cash withdrawal, TFO transfer out,
--         TFI transfer in, FEE fee, INT interest, DDR direct debit
-- TXN_STAT: P posted, R reversed      CHANNEL: BRN branch, ATM, MOB mobile, WEB, BAT batch, SYS system
CREATE TABLE TXNHIST (
    ACCT_NO     CHAR(12)      NOT NULL,
    TXN_SEQ     DECIMAL(9,0)  NOT NULL,
    POST_DT     DECIMAL(7,0)  NOT NULL,
    POST_TM     DECIMAL(6,0)  NOT NULL,
    VALUE_DT    DECIMAL(7,0)  NOT NULL,
    TXN_CD      CHAR(3)       NOT NULL,
    DR_CR_IND   CHAR(1)       NOT NULL,
    TXN_AMT     DECIMAL(15,2) NOT NULL,
    RUN_BAL     DECIMAL(15,2) NOT NULL,
    CURR_CD     CHAR(3)       NOT NULL,
    TXN_DESC    CHAR(40)      NOT NULL,
    TXN_REF     CHAR(16)      NOT NULL,
    CNTR_ACCT   CHAR(12)      NOT NULL,
    CHANNEL     CHAR(3)       NOT NULL,
    TXN_STAT    CHAR(1)       NOT NULL,
    PRIMARY KEY (ACCT_NO, TXN_SEQ)
);
CREATE INDEX TXNHIST_X1 ON TXNHIST (POST_DT);
CREATE INDEX TXNHIST_X2 ON TXNHIST (TXN_REF);

-- Funds-transfer posting log: one row per posting ATTEMPT. XFER_REF is the caller's reference;
-- the core does NOT de-duplicate it, so a reused reference gives two rows (and two postings).
-- XFER_STAT: P posted, R rejected.  RTN_CD: 0000 ok, 0008 business rejection (RSN_CD says why),
-- 0012 system error.  RSN_CD: see mock_mainframe/ledger/codes.py (R001..R010), blank when posted.
CREATE TABLE XFERLOG (
    XFER_ID     DECIMAL(12,0) NOT NULL PRIMARY KEY,
    XFER_REF    CHAR(16)      NOT NULL,
    FROM_ACCT   CHAR(12)      NOT NULL,
    TO_ACCT     CHAR(12)      NOT NULL,
    XFER_AMT    DECIMAL(15,2) NOT NULL,
    CURR_CD     CHAR(3)       NOT NULL,
    XFER_STAT   CHAR(1)       NOT NULL,
    RTN_CD      CHAR(4)       NOT NULL,
    RSN_CD      CHAR(4)       NOT NULL,
    POST_DT     DECIMAL(7,0)  NOT NULL,
    POST_TM     DECIMAL(6,0)  NOT NULL,
    CHANNEL     CHAR(3)       NOT NULL,
    MEMO        CHAR(40)      NOT NULL
);
CREATE INDEX XFERLOG_X1 ON XFERLOG (XFER_REF);

-- One row: the core's control record (current business date, seed parameters).
CREATE TABLE CTLREC (
    CTL_KEY     CHAR(8)       NOT NULL PRIMARY KEY,
    CTL_VALUE   CHAR(64)      NOT NULL
);
