000100*----------------------------------------------------------------
000200* TXNREC - DAILY TRANSACTION FILE, VB, LRECL 4096
000300* SAMPLE COPYBOOK FOR THE COREBRIDGE COPYBOOK TESTS
000400*----------------------------------------------------------------
000500 01  TXN-RECORD.                                                  TXNREC01
000600     05  TXN-HEADER.                                              TXNREC01
000700         10  TXN-TYPE            PIC X.                           TXNREC01
000800             88  TXN-IS-PAYMENT  VALUE 'P'.
000900             88  TXN-IS-REVERSAL VALUES 'R' 'V'.
001000         10  TXN-ID              PIC X(12).
001100         10  TXN-BRANCH          PIC 9(4).
001200         10  TXN-POSTED          PIC 9(8).
001300         10  TXN-POSTED-R REDEFINES TXN-POSTED.
001400             15  TXN-POSTED-YYYY PIC 9(4).
001500             15  TXN-POSTED-MM   PIC 99.
001600             15  TXN-POSTED-DD   PIC 99.
001700* AMOUNTS ARE PACKED, CENTS IMPLIED
001800     05  TXN-AMOUNT              PIC S9(11)V99 COMP-3.
001900     05  TXN-FEE                 PIC S9(5)V99 USAGE IS
002000                                 PACKED-DECIMAL.
002100     05  TXN-RATE                PIC S9(3)V9(4)
002200                                 SIGN IS LEADING SEPARATE.
002300     05  TXN-SEQ                 PIC S9(9) COMP.
002400     05  TXN-STATUS              PIC X(2) VALUE 'OK'.
002500         88  TXN-STATUS-OK       VALUE 'OK'.
002600         88  TXN-STATUS-BAD      VALUES 'E1' THRU 'E9'.
002700     05  TXN-MEMO                PIC X(30)   VALUE 'CONTINUED LITE
002800-    'RAL VALUE'.
002900     05  TXN-LINE-COUNT          PIC 9(2) COMP.
003000     05  TXN-DETAIL.
003100         10  TXN-CURRENCY        PIC X(3).
003200         10  TXN-LINES           OCCURS 0 TO 20 TIMES
003300                                 DEPENDING ON TXN-LINE-COUNT
003400                                 INDEXED BY TXN-IX.
003500             15  LINE-NO         PIC 9(3).
003600             15  LINE-AMT        PIC S9(7)V99 COMP-3.
003700             15  LINE-TEXT       PIC X(20).
003800     05  TXN-TRAILER-MARK        PIC X(4).
003900     05  FILLER                  PIC X(6).
